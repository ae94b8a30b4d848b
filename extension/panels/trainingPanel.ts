/** The Training webview panel: one per training job; loss curve, stats, preview grid, checkpoints. */
import * as vscode from 'vscode';
import type { TrainingFromWebview, TrainingToWebview } from '../../webview/shared/messages.ts';
import { renderHtml, webviewOptions } from './html.ts';

export const TRAINING_VIEW = 'ddpm.training';

const BODY = `
<header><h1>DDPM Training</h1><span id="title"></span></header>
<section><div id="stats">starting…</div>
  <label><input id="logScale" type="checkbox"> log scale</label> <button id="stop">Stop (saves a checkpoint)</button></section>
<section id="loss"></section>
<section class="row">
  <figure><canvas id="preview" width="0" height="0"></canvas><figcaption id="previewCaption">no samples yet</figcaption></figure>
  <div><h2>Checkpoints</h2><ul id="checkpoints"></ul></div>
</section>`;

export class TrainingPanel implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private ready: Promise<void>;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly messageEmitter = new vscode.EventEmitter<TrainingFromWebview>();
  readonly onMessage = this.messageEmitter.event;

  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    this.panel = existing ?? vscode.window.createWebviewPanel(TRAINING_VIEW, title, vscode.ViewColumn.Active, webviewOptions(extensionUri));
    this.panel.webview.options = webviewOptions(extensionUri);
    this.panel.webview.html = renderHtml(this.panel.webview, extensionUri, 'training', title, BODY);
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    this.disposables.push(
      this.panel.webview.onDidReceiveMessage((m: TrainingFromWebview) => {
        if (m.type === 'ready') markReady();
        this.messageEmitter.fire(m);
      }),
      this.panel.onDidDispose(() => this.dispose()),
    );
  }

  async post(m: TrainingToWebview): Promise<void> {
    await this.ready;
    await this.panel.webview.postMessage(m);
  }

  reveal(): void {
    this.panel.reveal();
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    this.messageEmitter.dispose();
  }
}
