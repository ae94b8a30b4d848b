/**
 * The `ddpm` command line over the engine (the same jobs the sidecar runs).
 *   ddpm train  --data SOURCE --preset NAME --steps N --batch B --out RUN_DIR [...]   train, with checkpoints and previews
 *   ddpm sample --ckpt FILE [--n 16] [--sampler ddim|ddpm] [--steps K] [--out grid.png] [...]
 *   ddpm info   [--backend NAME] [--json]        which backend this machine gets, and why the others were passed over
 *   ddpm model  --preset NAME [--json]           architecture summary and exact parameter count of a preset
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend, BACKEND_NAMES, type BackendChoice } from './backend.ts';
import { countParams, paramSpecs, presetConfig, PRESET_NAMES } from './ddpm/unet.ts';
import { loadCheckpoint } from './checkpoint/checkpoint.ts';
import { encodeGrid } from './image/png.ts';
import { runTrainJob, type TrainProgress } from './jobs/train.ts';
import { sampleImages, trajectoryBatch } from './jobs/sample.ts';

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
             [--ema-decay X] [--micro-batch M] [--flip|--no-flip]
  ddpm sample --ckpt FILE [--n 16] [--sampler ddim|ddpm] [--steps 50] [--eta 0] [--seed 0] [--out grid.png]
             [--trajectory traj.png] [--frames 10] [--x0 x0.png] [--ema|--no-ema] [--backend NAME]
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
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] step ${pr.step}/${pr.steps}  loss ${pr.loss.toFixed(4)}  ${pr.itPerSec.toFixed(2)} it/s  ETA ${formatDuration(pr.etaSeconds)}`;
}

async function train(p: Parsed): Promise<number> {
  const data = str(p, 'data');
  const preset = str(p, 'preset');
  const steps = int(p, 'steps', undefined, 1);
  const batch = int(p, 'batch', undefined, 1);
  const out = str(p, 'out');
  presetConfig(preset);
  const report = await initBackend(str(p, 'backend', 'auto') as BackendChoice);
  console.error(`backend: ${report.name} (${report.device})`);
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
      train: {
        lr: num(p, 'lr', 2e-4),
        warmupSteps: int(p, 'warmup', 5000),
        emaDecay: num(p, 'ema-decay', 0.9999),
        microBatch: int(p, 'micro-batch', 0),
        // Flipping digits or text makes wrong examples: off by default for MNIST-like data.
        randomFlip: flag(p, 'flip', !(data === 'mnist' || data.startsWith('idx:'))),
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
        const msg = e.type === 'checkpoint' ? `checkpoint ${e.path}` : e.type === 'samples' ? `samples ${e.path}` : `resumed from ${e.path} at step ${e.step}`;
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
  console.error(`backend: ${report.name} (${report.device}); ${ckpt}: step ${ck.meta.step}, ${useEma && ck.groups.ema ? 'EMA' : 'raw'} weights`);
  const params = new Map([...group].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  try {
    const t0 = Date.now();
    const r = await sampleImages(params, config, ck.meta.schedule, { n, sampler, steps, eta, seed, frames });
    const cols = Math.ceil(Math.sqrt(n));
    const dims = { height: config.imageSize, width: config.imageSize, channels: config.channels };
    const write = (file: string, buf: Buffer) => {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      fs.writeFileSync(file, buf);
      console.error(`wrote ${file}`);
    };
    write(out, encodeGrid({ data: r.images, n, ...dims }, cols));
    if (trajectory) write(trajectory, encodeGrid({ data: trajectoryBatch(r.frames, r.shape, 'xt'), n: n * r.frames.length, ...dims }, r.frames.length));
    if (x0Out) write(x0Out, encodeGrid({ data: trajectoryBatch(r.frames, r.shape, 'predX0'), n: n * r.frames.length, ...dims }, r.frames.length));
    console.error(`${n} samples, ${sampler}${sampler === 'ddim' ? `-${steps}` : ''}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    tf.dispose([...params.values()]);
    await shutdownBackend();
  }
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
