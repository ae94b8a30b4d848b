/**
 * A webview panel with typed messages both ways. Messages to the webview wait until it has said `ready` (it
 * registers its listener on load), so nothing sent early is lost.
 */
import * as vscode from 'vscode';
import { renderHtml, webviewOptions } from './html.ts';

export class PanelHost<ToWebview, FromWebview extends { type: string }> implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private readonly ready: Promise<void>;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly messageEmitter = new vscode.EventEmitter<FromWebview>();
  readonly onMessage = this.messageEmitter.event;

  constructor(extensionUri: vscode.Uri, viewType: string, script: string, title: string, body: string, existing?: vscode.WebviewPanel) {
    this.panel = existing ?? vscode.window.createWebviewPanel(viewType, title, vscode.ViewColumn.Active, webviewOptions(extensionUri));
    this.panel.webview.options = webviewOptions(extensionUri);
    this.panel.webview.html = renderHtml(this.panel.webview, extensionUri, script, title, body);
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    this.disposables.push(
      this.panel.webview.onDidReceiveMessage((m: FromWebview) => {
        if (m.type === 'ready') markReady();
        this.messageEmitter.fire(m);
      }),
      this.panel.onDidDispose(() => this.dispose()),
    );
  }

  async post(m: ToWebview): Promise<void> {
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
