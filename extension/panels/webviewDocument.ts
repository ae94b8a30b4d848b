/**
 * The HTML document around a view's markup (webview/<view>/index.html): a strict Content-Security-Policy that lets
 * in only our bundled script (by nonce) and styles, no network. Free of `vscode` so that tests can render it.
 */

export interface DocumentParts {
  /** A fresh random value per render: the only script allowed to run is the one carrying it. */
  nonce: string;
  /** The webview's origin for local resources (`webview.cspSource`). */
  cspSource: string;
  /** URIs of the view's bundle and stylesheet (`webview.asWebviewUri` of dist/webview/<view>.js and .css). */
  script: string;
  style: string;
  title: string;
  /** The body's markup, from webview/<view>/index.html. */
  markup: string;
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
  ].join('; ');
}

/** Escapes text for an HTML text node or a double-quoted attribute (titles hold file names). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function webviewDocument(p: DocumentParts): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(p.cspSource, p.nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${escapeHtml(p.style)}">
<title>${escapeHtml(p.title)}</title>
</head>
<body data-state="idle">
${p.markup}
<script nonce="${p.nonce}" src="${escapeHtml(p.script)}"></script>
</body>
</html>`;
}
