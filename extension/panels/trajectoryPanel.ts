/** The Trajectory webview panel: one per sampling run; shows x_t and x̂0 live, a timeline, and the final grid. */
import * as vscode from 'vscode';
import type { TrajectoryFromWebview, TrajectoryToWebview } from '../../webview/shared/messages.ts';
import { renderHtml, webviewOptions } from './html.ts';

export const TRAJECTORY_VIEW = 'ddpm.trajectory';

const BODY = `
<header><h1>DDPM Trajectory</h1><span id="caption"></span></header>
<section class="row">
  <figure><canvas id="xt" width="0" height="0"></canvas><figcaption>x<sub>t</sub></figcaption></figure>
  <figure><canvas id="x0" width="0" height="0"></canvas><figcaption>x̂<sub>0</sub> (prediction)</figcaption></figure>
  <figure><canvas id="grid" width="0" height="0"></canvas><figcaption>final samples</figcaption></figure>
</section>
<section class="controls">
  <input id="timeline" type="range" min="0" max="0" value="0" aria-label="timeline">
  <span id="t"></span> <span id="rate"></span>
</section>
<section class="buttons">
  <button id="stop">Stop</button><button id="again">Sample again</button>
  <button id="saveGrid">Save grid as PNG…</button><button id="saveStrip">Save trajectory strip as PNG…</button>
</section>`;

export class TrajectoryPanel implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private ready: Promise<void>;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly messageEmitter = new vscode.EventEmitter<TrajectoryFromWebview>();
  readonly onMessage = this.messageEmitter.event;

  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    this.panel = existing ?? vscode.window.createWebviewPanel(TRAJECTORY_VIEW, title, vscode.ViewColumn.Active, webviewOptions(extensionUri));
    this.panel.webview.options = webviewOptions(extensionUri);
    this.panel.webview.html = renderHtml(this.panel.webview, extensionUri, 'trajectory', title, BODY);
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    this.disposables.push(
      this.panel.webview.onDidReceiveMessage((m: TrajectoryFromWebview) => {
        if (m.type === 'ready') markReady();
        this.messageEmitter.fire(m);
      }),
      this.panel.onDidDispose(() => this.dispose()),
    );
  }

  async post(m: TrajectoryToWebview): Promise<void> {
    await this.ready;
    await this.panel.webview.postMessage(m);
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    this.messageEmitter.dispose();
  }
}
