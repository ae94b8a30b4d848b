// Views' markup (webview/<view>/index.html) is imported as text: esbuild's `text` loader (scripts/build.mjs).
declare module '*.html' {
  const markup: string;
  export default markup;
}
