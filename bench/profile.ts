/**
 * Per-kernel profile of one training step or one forward pass (tf.profile), to see which kernels a step spends its
 * time and memory in.
 *
 *   npm run bench:profile -- [--backend auto|webgpu|wasm|cpu|tensorflow] [--preset tiny] [--batch 8]
 *                            [--mode train|forward] [--warmup 2] [--steps 2] [--top 25] [--json]
 *                            [--cpu-profile FILE]
 *
 * Kernel times come from the backend's own timer: wall time per kernel on wasm and cpu; GPU timestamp queries on
 * webgpu, which Dawn offers only with `DDPM_WEBGPU_FLAGS=enable-dawn-features=allow_unsafe_apis` (without them every
 * webgpu kernel reads 0 ms). The step runs `--warmup` times first so that shader compilation and first-call setup
 * stay out of the profile. "MB kept" is what the kernels' outputs added to tf.memory() and still held at the end of
 * the step (the gradient tape keeps forward outputs until the backward pass has used them).
 *
 * Before the profiled step, `--steps` plain steps are timed (their wall times are printed); with `--cpu-profile` they
 * run under V8's CPU profiler and the .cpuprofile is written to FILE (open it in Chrome DevTools or VS Code), which
 * shows where the host spends a step that the GPU timestamps do not account for.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend, type BackendChoice } from '../sidecar/backend.ts';
import { GaussianDiffusion } from '../sidecar/ddpm/diffusion.ts';
import { Rng } from '../sidecar/ddpm/rng.ts';
import { makeSchedule } from '../sidecar/ddpm/schedule.ts';
import { presetConfig, UNet } from '../sidecar/ddpm/unet.ts';
import { ParallelTrainer } from '../sidecar/parallel/trainer.ts';
import { backendInferenceEps } from '../sidecar/parallel/wasmMemory.ts';
import { errorText, intFlag, listFlag, parseFlags, round, UsageError } from './common.ts';
import { forwardAtRandomTimesteps } from './forward.ts';

const USAGE =
  'usage: npm run bench:profile -- [--backend NAME] [--preset tiny|mnist|cifar10] [--batch N] [--mode train|forward] [--warmup N] [--steps N] [--workers N] [--top N] [--json] [--cpu-profile FILE]';

function post<T>(session: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))),
  );
}

interface KernelRow {
  name: string;
  count: number;
  ms: number;
  /** Bytes of the outputs these kernels created (summed over calls). */
  bytesAdded: number;
}

interface ShapeRow extends KernelRow {
  inputShapes: string;
}

async function main(argv: readonly string[]): Promise<number> {
  const f = parseFlags(
    argv,
    ['json', 'help'],
    ['backend', 'preset', 'batch', 'mode', 'warmup', 'steps', 'top', 'seed', 'cpu-profile', 'workers'],
  );
  if (f.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const backend = listFlag(f, 'backend', 'auto')[0] as BackendChoice;
  const preset = listFlag(f, 'preset', 'tiny')[0];
  const batch = intFlag(f, 'batch', 8, 1);
  const mode = listFlag(f, 'mode', 'train')[0];
  if (mode !== 'train' && mode !== 'forward') throw new UsageError('--mode must be train or forward');
  const warmup = intFlag(f, 'warmup', 2, 0);
  const top = intFlag(f, 'top', 25, 1);
  const seed = intFlag(f, 'seed', 0, 0);
  const steps = intFlag(f, 'steps', 2, 0);
  const workers = intFlag(f, 'workers', 1, 1);
  const cpuProfile = f.get('cpu-profile');
  if (cpuProfile === true) throw new UsageError('--cpu-profile needs a file name');

  const report = await initBackend(backend);
  process.stderr.write(`backend ${report.name}: ${report.device}\n`);
  const config = presetConfig(preset);
  const model = UNet.create(config, new Rng(seed));
  const diffusion = new GaussianDiffusion(makeSchedule());
  const trainer =
    mode === 'train' ? new ParallelTrainer(model, diffusion, { lr: 2e-4, warmupSteps: 0, workers }, seed) : null;
  const shape: [number, number, number, number] = [batch, config.imageSize, config.imageSize, config.channels];
  const x0 = tf.randomUniform(shape, -1, 1, 'float32', seed) as tf.Tensor4D;
  const rng = new Rng(seed);
  const step = async (): Promise<void> => {
    if (trainer) {
      await trainer.trainStep(x0);
      return;
    }
    await forwardAtRandomTimesteps(
      (x, t) => backendInferenceEps(model.params, model.config)(x, t),
      x0,
      diffusion.T,
      rng,
    );
  };
  try {
    for (let i = 0; i < warmup; i++) await step();
    const session = cpuProfile ? new inspector.Session() : null;
    if (session) {
      session.connect();
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.setSamplingInterval', { interval: 1000 });
      await post(session, 'Profiler.start');
    }
    const stepMs: number[] = [];
    for (let i = 0; i < steps; i++) {
      const s0 = performance.now();
      await step();
      stepMs.push(round(performance.now() - s0));
    }
    if (session && typeof cpuProfile === 'string') {
      const { profile } = await post<{ profile: object }>(session, 'Profiler.stop');
      fs.writeFileSync(cpuProfile, JSON.stringify(profile));
      session.disconnect();
    }
    process.stderr.write(`plain steps: ${stepMs.join(', ')} ms\n`);
    const t0 = performance.now();
    const info = await tf.profile(step);
    const wallMs = performance.now() - t0;
    const byName = new Map<string, KernelRow>();
    const byShape = new Map<string, ShapeRow>();
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const shapes = JSON.stringify(k.inputShapes);
      const a = byName.get(k.name) ?? { name: k.name, count: 0, ms: 0, bytesAdded: 0 };
      a.count++;
      a.ms += ms;
      a.bytesAdded += k.bytesAdded;
      byName.set(k.name, a);
      const key = `${k.name} ${shapes}`;
      const b = byShape.get(key) ?? { name: k.name, inputShapes: shapes, count: 0, ms: 0, bytesAdded: 0 };
      b.count++;
      b.ms += ms;
      b.bytesAdded += k.bytesAdded;
      byShape.set(key, b);
    }
    const kernelMs = [...byName.values()].reduce((s, r) => s + r.ms, 0);
    const names = [...byName.values()].sort((a, b) => b.ms - a.ms || b.bytesAdded - a.bytesAdded);
    const shapes = [...byShape.values()].sort((a, b) => b.ms - a.ms || b.bytesAdded - a.bytesAdded).slice(0, top);
    const doc = {
      backend: report.name,
      device: report.device,
      preset,
      batch,
      mode,
      params: model.numParams,
      stepMs,
      wallMs: round(wallMs),
      kernelMs: round(kernelMs),
      kernels: info.kernels.length,
      peakMB: round(info.peakBytes / 2 ** 20, 1),
      newMB: round(info.newBytes / 2 ** 20, 1),
      byName: names.map((r) => ({ ...r, ms: round(r.ms, 3) })),
      topShapes: shapes.map((r) => ({ ...r, ms: round(r.ms, 3) })),
    };
    if (f.has('json')) {
      console.log(JSON.stringify(doc, null, 1));
      return 0;
    }
    const pct = (ms: number) => (kernelMs > 0 ? `${round((100 * ms) / kernelMs, 1)}%` : '-');
    console.log(
      `${preset} batch ${batch} ${mode} on ${report.name} (${report.device}): plain steps ${stepMs.join(', ')} ms; ${round(wallMs)} ms wall (profiled), ` +
        `${round(kernelMs)} ms in kernels, ${info.kernels.length} kernel calls, peak ${doc.peakMB} MB of tensors\n`,
    );
    console.log('| kernel | calls | ms | share | MB out |\n|---|---:|---:|---:|---:|');
    for (const r of names.slice(0, top))
      console.log(
        `| ${r.name} | ${r.count} | ${round(r.ms, 2)} | ${pct(r.ms)} | ${round(r.bytesAdded / 2 ** 20, 1)} |`,
      );
    console.log('\n| kernel | input shapes | calls | ms | share |\n|---|---|---:|---:|---:|');
    for (const r of shapes)
      console.log(`| ${r.name} | ${r.inputShapes} | ${r.count} | ${round(r.ms, 2)} | ${pct(r.ms)} |`);
    return 0;
  } finally {
    x0.dispose();
    trainer?.dispose();
    model.dispose();
    await shutdownBackend();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof UsageError ? `${e.message}\n${USAGE}` : errorText(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
