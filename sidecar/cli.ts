/**
 * The `ddpm` command line over the engine (the same jobs the sidecar runs).
 *   ddpm train  --data SOURCE --preset NAME --steps N --batch B --out RUN_DIR [...]   train, with checkpoints and previews
 *   ddpm sample --ckpt FILE [--n 16] [--sampler ddim|ddpm] [--steps K] [--out grid.png] [...]
 *   ddpm interpolate --ckpt FILE --a IMG --b IMG [--t 500] [--lambdas 0,0.25,0.5,0.75,1] [--out strip.png]
 *   ddpm inspect FILE [--json]                   header, config, step, parameter count, tensors, loss history
 *   ddpm export --ckpt FILE --out FILE [--f16] [--no-ema]   a weights-only copy for sampling (EMA weights by default)
 *   ddpm info   [--backend NAME] [--json]        which backend this machine gets, and why the others were passed over
 *   ddpm model  --preset NAME [--json]           architecture summary and exact parameter count of a preset
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend, BACKEND_NAMES, type BackendChoice } from './backend.ts';
import { countParams, paramSpecs, presetConfig, PRESET_NAMES } from './ddpm/unet.ts';
import { CHECKPOINT_FORMAT, loadCheckpoint, readCheckpointMeta, saveCheckpoint } from './checkpoint/checkpoint.ts';
import { readHeader } from './checkpoint/safetensors.ts';
import { GaussianDiffusion } from './ddpm/diffusion.ts';
import { interpolate as interpolateLatents, INTERPOLATION_BATCH } from './ddpm/sampler.ts';
import { makeSchedule } from './ddpm/schedule.ts';
import { encodeGrid, loadImage } from './image/png.ts';
import { runTrainJob, type TrainProgress } from './jobs/train.ts';
import { sampleImages, trajectoryBatch, withSamplingThreads } from './jobs/sample.ts';

export class UsageError extends Error {}

interface Parsed {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[]): Parsed {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags.set(a.slice(2), argv[++i]);
      else flags.set(a.slice(2), true);
    } else positional.push(a);
  }
  return { command: positional.shift(), positional, flags };
}

const USAGE = `usage:
  ddpm train --data mnist|idx:PATH|cifar10:PATH|folder:PATH --preset ${PRESET_NAMES.join('|')} --steps N --batch B --out RUN_DIR
             [--resume] [--save-every S] [--sample-every S] [--keep K] [--backend NAME] [--seed N] [--lr X] [--warmup N]
             [--ema-decay X] [--micro-batch M] [--workers N|auto] [--flip|--no-flip]
  ddpm sample --ckpt FILE [--n 16] [--sampler ddim|ddpm] [--steps 50] [--eta 0] [--seed 0] [--out grid.png]
             [--trajectory traj.png] [--frames 10] [--x0 x0.png] [--ema|--no-ema] [--backend NAME] [--workers N|auto]
  ddpm interpolate --ckpt FILE --a IMG --b IMG [--t 500] [--lambdas 0,0.25,0.5,0.75,1] [--sampler ddim|ddpm] [--steps 50]
             [--seed 0] [--out strip.png] [--backend NAME] [--workers N|auto]
  ddpm inspect FILE [--json]
  ddpm export --ckpt FILE --out FILE [--f16] [--no-ema]
  ddpm info [--backend auto|${BACKEND_NAMES.join('|')}] [--json]
  ddpm model --preset ${PRESET_NAMES.join('|')} [--json]`;

function str(p: Parsed, name: string, fallback?: string): string {
  const v = p.flags.get(name);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`missing --${name}`);
  }
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v;
}

function int(p: Parsed, name: string, fallback?: number, min = 0): number {
  const raw = str(p, name, fallback === undefined ? undefined : String(fallback));
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${raw}'`);
  return v;
}

function num(p: Parsed, name: string, fallback: number): number {
  const raw = str(p, name, String(fallback));
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got '${raw}'`);
  return v;
}

function flag(p: Parsed, name: string, fallback: boolean): boolean {
  if (p.flags.has(`no-${name}`)) return false;
  return p.flags.has(name) ? true : fallback;
}

/** --workers: threads running the model on the CPU backends (train: gradients; sample: forward passes), or auto. */
function workersFlag(p: Parsed): number | 'auto' {
  const raw = str(p, 'workers');
  if (raw === 'auto') return 'auto';
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1 || v > 64) throw new UsageError(`--workers must be auto or an integer in 1..64, got '${raw}'`);
  return v;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

/** One status line: redrawn in place on a terminal, printed every few seconds otherwise (logs, CI). */
function progressLine(pr: TrainProgress): string {
  const width = 24;
  const filled = Math.round((pr.step / pr.steps) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] step ${pr.step}/${pr.steps}  loss ${pr.loss.toFixed(4)}  ${pr.itPerSec.toFixed(2)} it/s${pr.threads > 1 ? ` on ${pr.threads} threads` : ''}  ETA ${formatDuration(pr.etaSeconds)}`;
}

async function train(p: Parsed): Promise<number> {
  const data = str(p, 'data');
  const preset = str(p, 'preset');
  const steps = int(p, 'steps', undefined, 1);
  const batch = int(p, 'batch', undefined, 1);
  const out = str(p, 'out');
  presetConfig(preset);
  const report = await initBackend(str(p, 'backend', 'auto') as BackendChoice);
  console.error(`backend: ${report.name} — ${report.device}`);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    console.error('\nstopping: saving a checkpoint (Ctrl-C again to quit without saving)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  try {
    const result = await runTrainJob({
      data,
      preset,
      steps,
      batch,
      out,
      resume: p.flags.has('resume'),
      saveEvery: int(p, 'save-every', 500),
      sampleEvery: int(p, 'sample-every', 0),
      keep: int(p, 'keep', 3, 1),
      seed: int(p, 'seed', 0),
      backend: report.name,
      ...(p.flags.has('workers') ? { workers: workersFlag(p) } : {}),
      // Only the options given on the command line: the rest come from the defaults, or from the checkpoint when resuming.
      train: {
        ...(p.flags.has('lr') ? { lr: num(p, 'lr', 0) } : {}),
        ...(p.flags.has('warmup') ? { warmupSteps: int(p, 'warmup') } : {}),
        ...(p.flags.has('ema-decay') ? { emaDecay: num(p, 'ema-decay', 0) } : {}),
        ...(p.flags.has('micro-batch') ? { microBatch: int(p, 'micro-batch') } : {}),
        // Flipping digits or text makes wrong examples: off by default for MNIST-like data.
        ...(p.flags.has('flip') || p.flags.has('no-flip') || !p.flags.has('resume') ? { randomFlip: flag(p, 'flip', !(data === 'mnist' || data.startsWith('idx:'))) } : {}),
      },
      signal: controller.signal,
      onProgress: (pr) => {
        const now = Date.now();
        if (tty) process.stderr.write(`\r${progressLine(pr)}`);
        else if (now - lastPrint > 5000 || pr.step === pr.steps) {
          console.error(progressLine(pr));
          lastPrint = now;
        }
      },
      onEvent: (e) => {
        const msg =
          e.type === 'checkpoint'
            ? `checkpoint ${e.path}`
            : e.type === 'samples'
              ? `samples ${e.path}`
              : e.type === 'resumed'
                ? `resumed from ${e.path} at step ${e.step}`
                : `skipped ${e.count} file(s) that are not readable images, e.g. ${e.examples.join('; ')}`;
        console.error(tty ? `\n${msg}` : msg);
      },
    });
    console.error(`${tty ? '\n' : ''}${result.reason === 'done' ? 'done' : 'stopped'} at step ${result.step}: ${result.checkpoint}`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await shutdownBackend();
  }
}

async function sample(p: Parsed): Promise<number> {
  const ckpt = str(p, 'ckpt');
  const n = int(p, 'n', 16, 1);
  const sampler = str(p, 'sampler', 'ddim');
  if (sampler !== 'ddim' && sampler !== 'ddpm') throw new UsageError(`--sampler must be ddim or ddpm, got '${sampler}'`);
  const steps = int(p, 'steps', 50, 1);
  const eta = num(p, 'eta', 0);
  const seed = int(p, 'seed', 0);
  const out = str(p, 'out', 'samples.png');
  const trajectory = p.flags.has('trajectory') ? str(p, 'trajectory') : null;
  const x0Out = p.flags.has('x0') ? str(p, 'x0') : null;
  const frames = trajectory || x0Out ? int(p, 'frames', 10, 2) : 0;
  const useEma = flag(p, 'ema', true);
  const ck = loadCheckpoint(ckpt, [useEma ? 'ema' : 'model', 'model']);
  const group = ck.groups[useEma ? 'ema' : 'model'] ?? ck.groups.model;
  if (!group) throw new Error(`${ckpt} has no weights`);
  const report = await initBackend(str(p, 'backend', 'auto') as BackendChoice);
  const config = ck.meta.model;
  const which = useEma && ck.groups.ema ? 'EMA' : ck.meta.exportedFrom ? `${ck.meta.exportedFrom.weights === 'ema' ? 'EMA' : 'raw'} (exported)` : 'raw';
  console.error(`backend: ${report.name} — ${report.device}; ${ckpt}: step ${ck.meta.step}, ${which} weights`);
  const params = new Map([...group].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  try {
    const t0 = Date.now();
    const r = await sampleImages(params, config, ck.meta.schedule, {
      n,
      sampler,
      steps,
      eta,
      seed,
      frames,
      ...(p.flags.has('workers') ? { workers: workersFlag(p) } : {}),
      onWarning: (m) => console.error(`warning: ${m}`),
    });
    const cols = Math.ceil(Math.sqrt(n));
    const dims = { height: config.imageSize, width: config.imageSize, channels: config.channels };
    const write = async (file: string, image: Promise<Buffer>) => {
      const buf = await image;
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      fs.writeFileSync(file, buf);
      console.error(`wrote ${file}`);
    };
    await write(out, encodeGrid({ data: r.images, n, ...dims }, cols));
    if (trajectory) await write(trajectory, encodeGrid({ data: trajectoryBatch(r.frames, r.shape, 'xt'), n: n * r.frames.length, ...dims }, r.frames.length));
    if (x0Out) await write(x0Out, encodeGrid({ data: trajectoryBatch(r.frames, r.shape, 'predX0'), n: n * r.frames.length, ...dims }, r.frames.length));
    console.error(`${n} samples, ${sampler}${sampler === 'ddim' ? `-${steps}` : ''}, ${((Date.now() - t0) / 1000).toFixed(1)} s on ${r.threads} thread${r.threads === 1 ? '' : 's'}`);
    return 0;
  } finally {
    tf.dispose([...params.values()]);
    await shutdownBackend();
  }
}

async function interpolate(p: Parsed): Promise<number> {
  const ckpt = str(p, 'ckpt');
  const files = [str(p, 'a'), str(p, 'b')];
  const t = int(p, 't', 500);
  const lambdas = str(p, 'lambdas', '0,0.25,0.5,0.75,1')
    .split(',')
    .map((v) => Number(v));
  if (lambdas.some((l) => !(l >= 0 && l <= 1))) throw new UsageError('--lambdas must be comma-separated numbers in [0, 1]');
  const sampler = str(p, 'sampler', 'ddim');
  if (sampler !== 'ddim' && sampler !== 'ddpm') throw new UsageError(`--sampler must be ddim or ddpm, got '${sampler}'`);
  const out = str(p, 'out', 'interpolation.png');
  const ck = loadCheckpoint(ckpt, ['ema', 'model']);
  const group = (flag(p, 'ema', true) ? ck.groups.ema : undefined) ?? ck.groups.model;
  if (!group) throw new Error(`${ckpt} has no weights`);
  const config = ck.meta.model;
  if (!(t >= 0 && t < ck.meta.schedule.T)) throw new UsageError(`--t must be in 0..${ck.meta.schedule.T - 1}`);
  const images = await Promise.all(
    files.map((f) =>
      loadImage(f, config.imageSize, config.channels as 1 | 3).catch((e: Error) => {
        throw new Error(`${f}: not a readable image (${e.message})`);
      }),
    ),
  );
  await initBackend(str(p, 'backend', 'auto') as BackendChoice);
  const params = new Map([...group].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  const shape: [number, number, number, number] = [1, config.imageSize, config.imageSize, config.channels];
  const [x1, x2] = images.map((d) => tf.tensor4d(d, shape));
  try {
    const threadOpts = { ...(p.flags.has('workers') ? { workers: workersFlag(p) } : {}), onWarning: (m: string) => console.error(`warning: ${m}`) };
    const t0 = Date.now();
    const strip = await withSamplingThreads(params, config, ck.meta.schedule, Math.min(lambdas.length, INTERPOLATION_BATCH), threadOpts, (eps, threads) => {
      console.error(`denoising ${lambdas.length} interpolation${lambdas.length === 1 ? '' : 's'} from t = ${t} on ${threads} thread${threads === 1 ? '' : 's'}`);
      return interpolateLatents(eps, new GaussianDiffusion(makeSchedule(ck.meta.schedule)), x1, x2, t, lambdas, { sampler, steps: int(p, 'steps', 50, 1), seed: int(p, 'seed', 0) });
    });
    // The strip: the two inputs (as the model sees them) at the ends, the interpolations between.
    const per = config.imageSize * config.imageSize * config.channels;
    const all = new Float32Array((lambdas.length + 2) * per);
    all.set(images[0], 0);
    for (let i = 0; i < strip.length; i++) all.set((await strip[i].data()) as Float32Array, (i + 1) * per);
    all.set(images[1], (lambdas.length + 1) * per);
    tf.dispose(strip);
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    fs.writeFileSync(out, await encodeGrid({ data: all, n: lambdas.length + 2, height: config.imageSize, width: config.imageSize, channels: config.channels }, lambdas.length + 2));
    console.error(`wrote ${out}: input a, λ = ${lambdas.join(', ')}, input b (t = ${t}), ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    tf.dispose([x1, x2, ...params.values()]);
    await shutdownBackend();
  }
}

function inspect(p: Parsed): number {
  const file = p.positional[0] ?? str(p, 'ckpt');
  const h = readHeader(file);
  const meta = readCheckpointMeta(h);
  const elements = (names: (n: string) => boolean) => h.tensors.filter((t) => names(t.name)).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const params = meta ? elements((n) => n.startsWith('model.')) : elements(() => true);
  const hist = meta?.lossHistory;
  const lossSummary = hist && hist.loss.length
    ? { points: hist.loss.length, firstStep: hist.steps[0], lastStep: hist.steps[hist.steps.length - 1], first: hist.loss[0], last: hist.loss[hist.loss.length - 1], min: Math.min(...hist.loss) }
    : null;
  const summary = {
    file,
    fileSize: h.fileSize,
    format: meta ? CHECKPOINT_FORMAT : 'foreign safetensors',
    kind: meta?.kind,
    preset: meta?.preset,
    model: meta?.model,
    schedule: meta?.schedule,
    step: meta?.step,
    data: meta?.data,
    backend: meta?.backend,
    created: meta?.created,
    params,
    tensors: h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    lossHistory: lossSummary,
    metadata: meta ? undefined : h.metadata,
  };
  if (p.flags.has('json')) {
    console.log(JSON.stringify(summary));
    return 0;
  }
  console.log(`${file}: ${(h.fileSize / 2 ** 20).toFixed(1)} MB, ${summary.format}`);
  if (meta) {
    console.log(`  ${meta.kind} checkpoint, preset ${meta.preset ?? '(custom)'}, step ${meta.step}, ${params.toLocaleString('en-US')} parameters`);
    console.log(`  model ${JSON.stringify(meta.model)}`);
    console.log(`  schedule ${meta.schedule.kind}, T = ${meta.schedule.T}; data ${meta.data?.source ?? '?'}; backend ${meta.backend ?? '?'}; created ${meta.created}`);
    if (lossSummary) console.log(`  loss: ${lossSummary.points} points, step ${lossSummary.firstStep} → ${lossSummary.lastStep}: ${lossSummary.first.toFixed(4)} → ${lossSummary.last.toFixed(4)} (min ${lossSummary.min.toFixed(4)})`);
  } else {
    console.log(`  not a DDPM Studio checkpoint: ${h.tensors.length} tensors, ${params.toLocaleString('en-US')} values; it can be listed, not sampled from`);
  }
  console.log(`  ${h.tensors.length} tensors:`);
  for (const t of h.tensors) console.log(`    ${t.name.padEnd(48)} ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]`);
  return 0;
}

function exportWeights(p: Parsed): number {
  const src = str(p, 'ckpt');
  const out = str(p, 'out');
  const useEma = flag(p, 'ema', true);
  const ck = loadCheckpoint(src, [useEma ? 'ema' : 'model']);
  const weights = ck.groups[useEma ? 'ema' : 'model'];
  if (!weights) throw new Error(`${src} has no ${useEma ? 'EMA' : 'model'} weights`);
  const meta = { ...ck.meta, kind: 'weights' as const, rng: undefined, exportedFrom: { step: ck.meta.step, weights: useEma ? ('ema' as const) : ('model' as const) } };
  saveCheckpoint(out, { meta, groups: { model: weights } }, p.flags.has('f16') ? 'F16' : 'F32');
  console.error(`wrote ${out} (${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MB, ${useEma ? 'EMA' : 'raw'} weights of step ${ck.meta.step}${p.flags.has('f16') ? ', float16' : ''})`);
  return 0;
}

async function info(p: Parsed): Promise<void> {
  const report = await initBackend(str(p, 'backend', 'auto') as BackendChoice);
  await shutdownBackend();
  if (p.flags.has('json')) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(`backend: ${report.name}\ndevice:  ${report.device}`);
  for (const a of report.attempts) console.log(`  ${a.ok ? '✓' : '✗'} ${a.name}${a.reason ? `: ${a.reason}` : ''}`);
}

function model(p: Parsed): void {
  const name = str(p, 'preset');
  const config = presetConfig(name);
  const specs = paramSpecs(config);
  const params = countParams(specs);
  if (p.flags.has('json')) {
    console.log(JSON.stringify({ preset: name, config, params, tensors: specs.length }));
    return;
  }
  const levels = config.chMult.map((m, i) => `${config.imageSize / 2 ** i}px×${config.ch * m}`).join(' → ');
  console.log(`preset ${name}: ${params.toLocaleString('en-US')} parameters in ${specs.length} tensors`);
  console.log(`  images ${config.imageSize}×${config.imageSize}×${config.channels}; ch ${config.ch}, mult (${config.chMult.join(',')}), ${config.numResBlocks} res blocks/level`);
  console.log(`  levels ${levels}; attention at ${config.attnResolutions.join(', ') || 'none'}; dropout ${config.dropout}; GroupNorm ${config.groups}`);
}

export async function main(argv: string[]): Promise<number> {
  const p = parseArgs(argv);
  try {
    switch (p.command) {
      case 'train':
        return await train(p);
      case 'sample':
        return await sample(p);
      case 'interpolate':
        return await interpolate(p);
      case 'inspect':
        return inspect(p);
      case 'export':
        return exportWeights(p);
      case 'info':
        await info(p);
        return 0;
      case 'model':
        model(p);
        return 0;
      case undefined:
      case 'help':
        console.log(USAGE);
        return p.command ? 0 : 2;
      default:
        throw new UsageError(`unknown command '${p.command}'`);
    }
  } catch (e) {
    console.error(`ddpm: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(USAGE);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
