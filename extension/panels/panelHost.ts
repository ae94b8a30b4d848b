/**
 * A webview with typed messages both ways. Messages to the webview wait until it has said `ready` (it registers its
 * listener on load), so nothing sent early is lost.
 *
 * It wraps any webview panel: a new one (created here), one restored after a reload (a panel serializer's), or the
 * panel VS Code gives a custom editor (resolveCustomEditor); in every case it renders the view's document into it.
 */
import * as vscode from 'vscode';
import { renderHtml, webviewOptions, type WebviewView } from './html.ts';

export class PanelHost<ToWebview, FromWebview extends { type: string }> implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private readonly ready: Promise<void>;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly messageEmitter = new vscode.EventEmitter<FromWebview>();
  readonly onMessage = this.messageEmitter.event;

  constructor(extensionUri: vscode.Uri, view: WebviewView, title: string, existing?: vscode.WebviewPanel) {
    this.panel =
      existing ??
      vscode.window.createWebviewPanel(view.viewType, title, vscode.ViewColumn.Active, webviewOptions(extensionUri));
    this.panel.webview.options = webviewOptions(extensionUri);
    this.panel.webview.html = renderHtml(this.panel.webview, extensionUri, view, title);
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
