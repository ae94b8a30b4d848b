/**
 * A training run as a job: data → Trainer steps → periodic checkpoints (keeping the last K plus `latest`), sample
 * grids and a loss log, with progress callbacks and a stop signal that saves before returning. Used by the CLI and
 * by the sidecar; knows nothing about either.
 *
 * Run folder: latest.safetensors, ckpt-<step>.safetensors, loss.csv, samples/step-<step>.png, and with evalEvery
 * eval.csv (the held-out L_simple of the EMA weights: step, loss, then one column per t of the grid).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GaussianDiffusion } from '../ddpm/diffusion.ts';
import { Rng } from '../ddpm/rng.ts';
import { meanFlat, qNoise } from '../ddpm/likelihood.ts';
import { makeSchedule, type ScheduleConfig } from '../ddpm/schedule.ts';
import type { TrainConfig } from '../ddpm/train.ts';
import { presetConfig, UNet, type UNetConfig } from '../ddpm/unet.ts';
import { ParallelTrainer } from '../parallel/trainer.ts';
import { resolveWorkers } from '../parallel/workerPool.ts';
import {
  CHECKPOINT_FORMAT,
  downsampleHistory,
  loadCheckpoint,
  saveCheckpoint,
  writeFileAtomic,
  type CheckpointMeta,
  type LossHistory,
} from '../checkpoint/checkpoint.ts';
import { openDataset } from '../data/open.ts';
import { EpochOrder, type Dataset } from '../data/dataset.ts';
import { encodeGrid } from '../image/png.ts';
import { sampleImages, withSamplingThreads } from './sample.ts';
import { BadInputError, requireFile } from './errors.ts';
import { acquireRunLock, removeDeadWritersTempFiles } from './runFolder.ts';
import type { TrainProgressParams } from '../protocol.ts';

export interface TrainJobOptions {
  /** 'mnist', 'idx:PATH', 'cifar10:PATH' or 'folder:PATH'. */
  data: string;
  preset: string;
  /** Overrides of the preset (e.g. imageSize/channels to match the data). */
  model?: Partial<UNetConfig>;
  /**
   * Train a class-conditional model (classifier-free guidance) on the data's labels: a new run only (a resumed run is
   * what its checkpoint is). The data must have class labels.
   */
  conditional?: boolean;
  /** Guidance scale of a conditional model's preview grids (one row per class). */
  previewGuidance?: number;
  schedule?: Partial<ScheduleConfig>;
  /** Total steps of the run (a resumed run continues up to this). */
  steps: number;
  batch: number;
  out: string;
  resume?: boolean;
  /** With resume: the training checkpoint to continue from (default: the run's latest.safetensors). */
  resumeFrom?: string;
  saveEvery?: number;
  /** 0 = no sample grids. */
  sampleEvery?: number;
  sampleCount?: number;
  /** DDIM steps of the preview grids. */
  sampleSteps?: number;
  keep?: number;
  seed?: number;
  /**
   * Every N steps (0 = never, the default): the EMA weights' L_simple on a fixed held-out batch (`evalImages` images)
   * at `evalTimesteps` values of t spread over [0, T), with noise that is a function of (seed, image, t) alone.
   */
  evalEvery?: number;
  evalImages?: number;
  evalTimesteps?: number;
  train?: Partial<TrainConfig>;
  /**
   * The recipe of a new run for what `train` leaves out (a resumed run keeps its checkpoint's instead); without it,
   * the engine's defaults, which are the paper's.
   */
  trainDefaults?: Partial<TrainConfig>;
  /**
   * Threads computing gradients on the CPU backends (data parallel): a number, or 'auto' (the default: one per core
   * for models big enough to gain from it). A property of this machine, not of the run: never taken from a checkpoint.
   */
  workers?: number | 'auto';
  /** Recorded in checkpoints. */
  backend?: string;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  onEvent?: (e: TrainEvent) => void;
}

/** What the protocol's ddpm/trainProgress carries, without the job id (the job does not know it). */
export type TrainProgress = Omit<TrainProgressParams, 'jobId'>;

export type TrainEvent =
  | { type: 'checkpoint'; path: string; step: number }
  | { type: 'samples'; path: string; step: number }
  | { type: 'resumed'; path: string; step: number }
  | { type: 'skipped'; count: number; examples: string[] }
  | {
      type: 'eval';
      step: number;
      loss: number;
      byT: { t: number; loss: number }[];
      images: number;
      split: 'test' | 'all';
      path: string;
    };

export interface TrainJobResult {
  step: number;
  reason: 'done' | 'stopped';
  checkpoint: string;
}

const pad = (n: number) => String(n).padStart(7, '0');

/** The abort reason of a process about to exit: the run saves and ends at once, without its final preview. */
export const SHUTDOWN = 'shutdown';

/** The training evaluation's grid: k values of t at the centres of k equal parts of [0, T). */
export function evalTimesteps(T: number, k: number): number[] {
  const n = Math.max(1, Math.min(k, T));
  return Array.from({ length: n }, (_, i) => Math.min(T - 1, Math.floor(((i + 0.5) * T) / n)));
}

/** The held-out batch of the training evaluation: the first images of the test split (a folder's own, and an IDX file
 * without a t10k- file beside it: the training images). */
async function evalBatch(
  source: string,
  train: Dataset,
  size: number,
  channels: number,
  n: number,
): Promise<{ images: Float32Array; n: number; split: 'test' | 'all' }> {
  let data = train;
  let split: 'test' | 'all' = 'all';
  if (!source.startsWith('folder:')) {
    try {
      data = await openDataset(source, { imageSize: size, channels, split: 'test' });
      split = 'test';
    } catch {
      // no held-out part: the training images
    }
  }
  const count = Math.min(n, data.size);
  return { images: await data.read(Array.from({ length: count }, (_, i) => i)), n: count, split };
}

/** The seed of the evaluation's noise: a constant of the run, apart from the seed the trainer's generator has. */
const EVAL_NOISE_SEED = 0x5eed;

/** Trains in `o.out`, holding the run folder's lock (runFolder.ts) for the whole job: one job per folder. */
export async function runTrainJob(o: TrainJobOptions): Promise<TrainJobResult> {
  // A file where the run folder should be (found by bench/faults/rpcFuzz.ts: mkdir's EEXIST was an internal error).
  if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory())
    throw new BadInputError(`${o.out} is a file, not a folder: the run folder (out) must be a folder`);
  fs.mkdirSync(o.out, { recursive: true });
  const release = acquireRunLock(o.out);
  try {
    return await trainInFolder(o);
  } finally {
    release();
  }
}

async function trainInFolder(o: TrainJobOptions): Promise<TrainJobResult> {
  const check = (ok: boolean, msg: string) => {
    if (!ok) throw new Error(msg);
  };
  check(Number.isInteger(o.steps) && o.steps > 0, `steps must be a positive integer, got ${o.steps}`);
  check(Number.isInteger(o.batch) && o.batch > 0, `batch must be a positive integer, got ${o.batch}`);
  const saveEvery = o.saveEvery ?? 500;
  const sampleEvery = o.sampleEvery ?? 0;
  const keep = o.keep ?? 3;
  const seed = o.seed ?? 0;
  fs.mkdirSync(o.out, { recursive: true });
  // Temporary files of a save that was killed mid-write (the checkpoints themselves are intact: writes are atomic);
  // only those whose writer is dead (runFolder.ts).
  removeDeadWritersTempFiles(o.out);
  const latest = path.join(o.out, 'latest.safetensors');
  if (o.resume && o.resumeFrom) requireFile(o.resumeFrom, 'the checkpoint to resume from');
  const resumeFile = (o.resume && o.resumeFrom) || latest;

  let config: UNetConfig;
  let model: UNet;
  let trainer: ParallelTrainer;
  let history: LossHistory = { steps: [], loss: [] };
  let scheduleCfg: Required<ScheduleConfig>;
  let runSeed = seed;
  let dataSource = o.data;
  let classes: string[] | undefined;
  if (o.resume && fs.existsSync(resumeFile)) {
    const ck = loadCheckpoint(resumeFile);
    if (ck.meta.kind !== 'training' || !ck.groups['adam.m'] || ck.meta.rng === undefined)
      throw new Error(`${resumeFile} holds weights only and cannot be resumed`);
    config = ck.meta.model;
    scheduleCfg = ck.meta.schedule;
    runSeed = ck.meta.seed;
    dataSource = ck.meta.data?.source ?? o.data;
    classes = ck.meta.classes;
    if (o.data !== dataSource) throw new Error(`the run in ${o.out} was trained on '${dataSource}', not '${o.data}'`);
    const toTensors = (g: Map<string, { shape: number[]; data: Float32Array }> | undefined) =>
      new Map([...(g ?? new Map())].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
    const weights = toTensors(ck.groups.model);
    model = new UNet(config, new Map([...weights].map(([k, v]) => [k, tf.variable(v, true)])));
    const ema = toTensors(ck.groups.ema);
    const m = toTensors(ck.groups['adam.m']);
    const v = toTensors(ck.groups['adam.v']);
    const workers = resolveWorkers(o.workers, o.batch, model.numParams);
    trainer = new ParallelTrainer(
      model,
      new GaussianDiffusion(makeSchedule(scheduleCfg)),
      { ...ck.meta.train, ...o.train, workers },
      runSeed + 1,
    );
    trainer.restore({ step: ck.meta.step, rng: ck.meta.rng, ema, adamM: m, adamV: v });
    tf.dispose([...weights.values(), ...ema.values(), ...m.values(), ...v.values()]);
    history = ck.meta.lossHistory ?? history;
    o.onEvent?.({ type: 'resumed', path: resumeFile, step: ck.meta.step });
  } else {
    const wish = presetConfig(o.preset, o.model);
    // The data fixes the model's image size and channels where it has its own (digits, CIFAR-10).
    const probe = await openDataset(o.data, { imageSize: wish.imageSize, channels: wish.channels });
    if (o.conditional) {
      if (!probe.classes || !probe.labels)
        throw new Error(
          `${o.data} has no class labels to train a conditional model on (labelled: mnist, an IDX file with its labels file beside it, cifar10, a folder of class sub-folders)`,
        );
      classes = [...probe.classes];
    }
    config = presetConfig(o.preset, {
      ...o.model,
      imageSize: probe.imageSize,
      channels: probe.channels,
      ...(classes ? { numClasses: classes.length } : {}),
    });
    scheduleCfg = makeSchedule(o.schedule).config;
    model = UNet.create(config, new Rng(runSeed));
    const workers = resolveWorkers(o.workers, o.batch, model.numParams);
    trainer = new ParallelTrainer(
      model,
      new GaussianDiffusion(makeSchedule(scheduleCfg)),
      { ...o.trainDefaults, ...o.train, workers },
      runSeed + 1,
    );
  }

  const dataset = await openDataset(dataSource, { imageSize: config.imageSize, channels: config.channels });
  if (dataset.imageSize !== config.imageSize || dataset.channels !== config.channels) {
    throw new Error(
      `${dataSource} gives ${dataset.imageSize}×${dataset.imageSize}×${dataset.channels} images but the model takes ${config.imageSize}×${config.imageSize}×${config.channels}`,
    );
  }
  if (config.numClasses && (!dataset.labels || dataset.classes?.length !== config.numClasses)) {
    throw new Error(`${dataSource} does not give the labels of the model's ${config.numClasses} classes`);
  }
  if (dataset.skipped && dataset.skipped.count > 0) {
    o.onEvent?.({ type: 'skipped', count: dataset.skipped.count, examples: dataset.skipped.examples });
  }
  const order = new EpochOrder(dataset.size, runSeed);
  const evalEvery = o.evalEvery ?? 0;
  const held =
    evalEvery > 0 ? await evalBatch(dataSource, dataset, config.imageSize, config.channels, o.evalImages ?? 16) : null;
  const evalGrid = evalTimesteps(scheduleCfg.T, o.evalTimesteps ?? 10);
  const evalCsv = path.join(o.out, 'eval.csv');
  if (held) {
    const evalHeader = `step,loss,${evalGrid.map((t) => `t${t}`).join(',')}\n`;
    // Line ends of either kind: a log saved by a Windows editor, or checked out with core.autocrlf, has CRLF.
    const old = fs.existsSync(evalCsv) ? fs.readFileSync(evalCsv, 'utf8').split(/\r?\n/) : [];
    // A resumed run keeps the rows up to its checkpoint's step (when the grid is the same); a new run starts afresh.
    const keepRows =
      trainer.step > 0 && old[0] === evalHeader.trimEnd()
        ? old.slice(1).filter((r) => r && Number(r.split(',')[0]) <= trainer.step)
        : [];
    fs.writeFileSync(evalCsv, evalHeader + keepRows.map((r) => `${r}\n`).join(''));
  }
  const csv = path.join(o.out, 'loss.csv');
  // loss_q1..loss_q4: the step's loss by quarter of t (empty where the batch drew no t in that quarter).
  const header = 'step,loss,grad_norm,lr,seconds,loss_q1,loss_q2,loss_q3,loss_q4\n';
  if (!fs.existsSync(csv) || trainer.step === 0) fs.writeFileSync(csv, header);
  else {
    // Rows written after the checkpoint we resume from belong to steps that are about to be redone.
    const rows = fs
      .readFileSync(csv, 'utf8')
      .split(/\r?\n/)
      .slice(1)
      .filter((r) => r && Number(r.split(',')[0]) <= trainer.step);
    fs.writeFileSync(csv, header + rows.map((r) => `${r}\n`).join(''));
  }
  let lastCheckpoint: string | null = o.resume && fs.existsSync(resumeFile) ? resumeFile : null;

  const save = async (): Promise<string> => {
    const read = async (m: ReadonlyMap<string, tf.Tensor>) => {
      const out = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const [k, t] of m) out.set(k, { shape: t.shape, data: (await t.data()) as Float32Array });
      return out;
    };
    const ema = trainer.emaParams();
    const { m, v } = trainer.adamMoments();
    try {
      const meta: CheckpointMeta = {
        format: CHECKPOINT_FORMAT,
        kind: 'training',
        model: config,
        preset: o.preset,
        schedule: scheduleCfg,
        step: trainer.step,
        seed: runSeed,
        rng: trainer.rngState(),
        data: { source: dataSource, size: dataset.size },
        batch: o.batch,
        train: trainer.config,
        backend: o.backend,
        created: new Date().toISOString(),
        lossHistory: history,
        ...(classes ? { classes } : {}),
      };
      const file = path.join(o.out, `ckpt-${pad(trainer.step)}.safetensors`);
      saveCheckpoint(file, {
        meta,
        groups: {
          model: await read(model.params),
          ema: await read(ema),
          'adam.m': await read(m),
          'adam.v': await read(v),
        },
      });
      // `latest` is a copy, replaced atomically, so that it is never a half-written file.
      writeFileAtomic(latest, [fs.readFileSync(file)]);
      const old = fs
        .readdirSync(o.out)
        .filter((f) => /^ckpt-\d+\.safetensors$/.test(f))
        .sort();
      for (const f of old.slice(0, Math.max(0, old.length - keep))) fs.rmSync(path.join(o.out, f), { force: true });
      lastCheckpoint = file;
      o.onEvent?.({ type: 'checkpoint', path: file, step: trainer.step });
      return file;
    } finally {
      tf.dispose([...ema.values(), ...m.values(), ...v.values()]);
    }
  };

  /** The step of the last preview grid (a resumed run's earlier grids are on disk, but not of these weights). */
  let previewStep = -1;
  const preview = async () => {
    const ema = trainer.emaParams();
    try {
      const n = o.sampleCount ?? 16;
      // On the trainer's threads, if it has any: a pool of its own would cost a second set of workers.
      const threads = trainer.workerPool ? { pool: trainer.workerPool } : { workers: 1 };
      // A conditional model's grid goes through its classes in order: row by row, one class per image.
      const k = config.numClasses ?? 0;
      const r = await sampleImages(ema, config, scheduleCfg, {
        n,
        sampler: 'ddim',
        steps: o.sampleSteps ?? 20,
        // As DDPM: Sample does by default: from pure noise at T−1 (schedule.ts), stochastic (η = 1): a deterministic
        // DDIM grid of a young model shows grey, speckled backgrounds that η = 1 washes out (models/README.md).
        spacing: 'trailing',
        eta: 1,
        seed: runSeed,
        ...(k ? { labels: Array.from({ length: n }, (_, i) => i % k), guidance: o.previewGuidance ?? 0 } : {}),
        ...threads,
      });
      const dir = path.join(o.out, 'samples');
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `step-${pad(trainer.step)}.png`);
      fs.writeFileSync(
        file,
        await encodeGrid(
          { data: r.images, n, height: config.imageSize, width: config.imageSize, channels: config.channels },
          Math.ceil(Math.sqrt(n)),
        ),
      );
      previewStep = trainer.step;
      o.onEvent?.({ type: 'samples', path: file, step: trainer.step });
    } finally {
      tf.dispose([...ema.values()]);
    }
  };

  /**
   * The EMA weights' ε-MSE on the held-out batch at each t of the grid: every (image, t) pair is one forward pass
   * (no dropout), with qNoise's noise, so that nothing is drawn from the trainer's generator and the numbers are
   * comparable from step to step.
   */
  const evaluate = async () => {
    if (!held) return;
    const { n } = held;
    const [h, w, c] = [config.imageSize, config.imageSize, config.channels];
    const per = h * w * c;
    const pairs = n * evalGrid.length;
    const pass = Math.min(pairs, 32);
    const diffusion = new GaussianDiffusion(makeSchedule(scheduleCfg));
    const ema = trainer.emaParams();
    const mse = new Float64Array(pairs);
    try {
      const threads = trainer.workerPool ? { pool: trainer.workerPool } : { workers: 1 };
      await withSamplingThreads(ema, config, scheduleCfg, pass, threads, async (eps) => {
        for (let start = 0; start < pairs; start += pass) {
          const b = Math.min(pass, pairs - start);
          const img = Array.from({ length: b }, (_, k) => (start + k) % n);
          const t = Array.from({ length: b }, (_, k) => evalGrid[Math.floor((start + k) / n)]);
          const x0Host = new Float32Array(b * per);
          const noiseHost = new Float32Array(b * per);
          img.forEach((i, k) => {
            x0Host.set(held.images.subarray(i * per, (i + 1) * per), k * per);
            qNoise(EVAL_NOISE_SEED, i, t[k], noiseHost.subarray(k * per, (k + 1) * per));
          });
          const x0 = tf.tensor4d(x0Host, [b, h, w, c]);
          const noise = tf.tensor4d(noiseHost, [b, h, w, c]);
          const xt = diffusion.qSample(x0, t, noise);
          try {
            const epsTheta = await eps(xt, t);
            const m = tf.tidy(() => meanFlat(tf.squaredDifference(noise, epsTheta)));
            epsTheta.dispose();
            const values = (await m.data()) as Float32Array;
            m.dispose();
            values.forEach((v, k) => (mse[start + k] = v));
          } finally {
            tf.dispose([x0, noise, xt]);
          }
        }
      });
    } finally {
      tf.dispose([...ema.values()]);
    }
    const byT = evalGrid.map((t, j) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += mse[j * n + i];
      return { t, loss: s / n };
    });
    const loss = byT.reduce((a, b) => a + b.loss, 0) / byT.length;
    fs.appendFileSync(evalCsv, `${trainer.step},${loss},${byT.map((b) => b.loss).join(',')}\n`);
    o.onEvent?.({ type: 'eval', step: trainer.step, loss, byT, images: n, split: held.split, path: evalCsv });
  };

  let reason: 'done' | 'stopped' = 'done';
  let rate = 0;
  const started = Date.now();
  try {
    while (trainer.step < o.steps) {
      // On CPU backends every await in a step resolves as a microtask; without a macrotask turn, signals (Ctrl-C),
      // IPC messages and timers would never run while training.
      await new Promise<void>((r) => setImmediate(r));
      if (o.signal?.aborted) {
        reason = 'stopped';
        break;
      }
      const t0 = performance.now();
      const indices = order.batch(trainer.step, o.batch);
      const batch = await dataset.read(indices);
      const labels = config.numClasses ? [...(dataset.labels?.(indices) ?? [])] : undefined;
      const x = tf.tensor4d(batch, [o.batch, config.imageSize, config.imageSize, config.channels]);
      let stats;
      try {
        stats = await trainer.trainStep(x, labels);
      } finally {
        x.dispose();
      }
      const dt = (performance.now() - t0) / 1000;
      rate = rate === 0 ? 1 / dt : 0.9 * rate + 0.1 / dt;
      history.steps.push(stats.step);
      history.loss.push(stats.loss);
      if (history.steps.length > 4000) history = downsampleHistory(history, 2000);
      fs.appendFileSync(
        csv,
        `${stats.step},${stats.loss},${stats.gradNorm},${stats.lr},${((Date.now() - started) / 1000).toFixed(2)},${stats.lossByQuarter.map((q) => q ?? '').join(',')}\n`,
      );
      o.onProgress?.({
        step: stats.step,
        steps: o.steps,
        loss: stats.loss,
        lr: stats.lr,
        gradNorm: stats.gradNorm,
        itPerSec: rate,
        etaSeconds: (o.steps - stats.step) / rate,
        threads: stats.threads,
        lossByQuarter: stats.lossByQuarter,
        T: scheduleCfg.T,
        lastCheckpoint,
      });
      if (saveEvery > 0 && stats.step % saveEvery === 0 && stats.step < o.steps) await save();
      if (sampleEvery > 0 && stats.step % sampleEvery === 0) await preview();
      if (evalEvery > 0 && stats.step % evalEvery === 0) await evaluate();
    }
    const checkpoint = await save();
    // A run that ends or stops between previews still shows what it learnt (a 50-step run with sampleEvery 500 would
    // show none): one more grid from the final weights, after the checkpoint, so that a stop never waits to save.
    const exiting = o.signal?.aborted && o.signal.reason === SHUTDOWN;
    if (sampleEvery > 0 && trainer.step > 0 && previewStep < trainer.step && !exiting) await preview();
    return { step: trainer.step, reason, checkpoint };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
