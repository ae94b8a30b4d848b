/** A view's webview document and options: its markup and bundles come from dist/webview/ only. */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { webviewDocument } from './webviewDocument.ts';

/**
 * One webview: `name` is its folder under webview/ and the base name of its bundle and stylesheet in dist/webview/;
 * `markup` its webview/<name>/index.html, which esbuild inlines into the extension bundle as text (so that the
 * packaged extension needs no extra file).
 */
export interface WebviewView {
  name: string;
  viewType: string;
  markup: string;
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')],
  };
}

export function renderHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  view: WebviewView,
  title: string,
): string {
  const asset = (file: string) =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', file)).toString();
  return webviewDocument({
    nonce: randomBytes(16).toString('base64'),
    cspSource: webview.cspSource,
    script: asset(`${view.name}.js`),
    style: asset(`${view.name}.css`),
    title,
    markup: view.markup,
  });
}
