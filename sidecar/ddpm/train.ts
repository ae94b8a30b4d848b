/**
 * One optimisation step of Algorithm 1 (Ho et al. 2020) with the paper's recipe (Appendix B): x_0 from the data
 * (randomly flipped left–right), t ~ Uniform{0..T−1}, ε ~ N(0, I), gradient of L_simple (eq. 14); Adam with
 * linear learning-rate warm-up, gradient clipping at global norm 1, and an exponential moving average of the
 * weights (decay 0.9999), which is what gets sampled from.
 *
 * Every random draw comes from one seeded generator, in a fixed order, so the same seed on the same backend gives
 * the same losses; its state is part of the trainer state for exact resume.
 */
import * as tf from '@tensorflow/tfjs';
import { assertBackendHealthy } from '../backend.ts';
import type { GaussianDiffusion } from './diffusion.ts';
import { backendUsesWorkers, ModelWorkerPool, workerInit, type WorkerMicroBatch } from './workerPool.ts';
import { microBatchGradients } from './gradients.ts';
import { maxTrainingMicroBatch } from './wasmMemory.ts';
import { Rng, type RngState } from './rng.ts';
import type { UNet } from './unet.ts';

export interface TrainConfig {
  lr: number;
  /** Linear warm-up of the learning rate over this many steps (the paper: 5000). */
  warmupSteps: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  /** Clip gradients to this global L2 norm (0 disables clipping). */
  gradClip: number;
  /** EMA decay of the weights (0 disables the EMA). */
  emaDecay: number;
  /** Random left–right flips of the training images (off for digits and text). */
  randomFlip: boolean;
  /**
   * Largest number of images per forward/backward pass; a larger batch is split and its gradients accumulated
   * (0 = the whole batch at once, or one micro-batch per thread). On wasm, never more than its 4 GiB heap holds
   * (wasmMemory.ts): a larger batch is split as needed whatever this says.
   */
  microBatch: number;
  /**
   * Threads computing gradients (data parallel over micro-batches, workerPool.ts): 1 = this thread only. Used on
   * the CPU backends (wasm, cpu); a GPU backend computes on the GPU and ignores it. Without `microBatch`, the batch
   * is split into one micro-batch per thread.
   */
  workers: number;
}

/**
 * Images per micro-batch for a batch of `batch` on `threads` threads: `microBatch` if set (> 0), else an even share
 * per thread, and in either case at most `limit` (what one pass may take: wasmMemory.ts). Under the limit the split
 * stays even: each thread gets the same number of micro-batches (cifar10 at batch 32 on 2 threads, limit 12: four
 * of 8, not 12 + 12 + 8).
 */
export function microBatchSize(batch: number, threads: number, microBatch: number, limit = Infinity): number {
  if (microBatch > 0) return Math.max(1, Math.min(microBatch, batch, limit));
  const share = Math.ceil(batch / threads);
  if (share <= limit) return share;
  const perThread = Math.ceil(share / limit);
  return Math.max(1, Math.ceil(batch / (threads * perThread)));
}

export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = {
  lr: 2e-4,
  warmupSteps: 5000,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEps: 1e-8,
  gradClip: 1.0,
  emaDecay: 0.9999,
  randomFlip: true,
  microBatch: 0,
  workers: 1,
};

export interface StepStats {
  /** The step number after this update (1 after the first step). */
  step: number;
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used for this update. */
  lr: number;
  /** Threads that computed this step's gradients (1 unless the batch was spread over worker threads). */
  threads: number;
}

/** What a checkpoint must hold to resume exactly. */
export interface TrainerState {
  step: number;
  rng: RngState;
  ema: Map<string, tf.Tensor>;
  adamM: Map<string, tf.Tensor>;
  adamV: Map<string, tf.Tensor>;
}

export function validateTrainConfig(c: TrainConfig): TrainConfig {
  const check = (ok: boolean, msg: string) => {
    if (!ok) throw new Error(`training config: ${msg}`);
  };
  check(c.lr > 0 && Number.isFinite(c.lr), `lr must be > 0, got ${c.lr}`);
  check(Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0, `warmupSteps must be an integer ≥ 0, got ${c.warmupSteps}`);
  check(c.adamBeta1 >= 0 && c.adamBeta1 < 1, `adamBeta1 must be in [0, 1), got ${c.adamBeta1}`);
  check(c.adamBeta2 >= 0 && c.adamBeta2 < 1, `adamBeta2 must be in [0, 1), got ${c.adamBeta2}`);
  check(c.adamEps > 0, `adamEps must be > 0, got ${c.adamEps}`);
  check(c.gradClip >= 0, `gradClip must be ≥ 0, got ${c.gradClip}`);
  check(c.emaDecay >= 0 && c.emaDecay < 1, `emaDecay must be in [0, 1), got ${c.emaDecay}`);
  check(Number.isInteger(c.microBatch) && c.microBatch >= 0, `microBatch must be an integer ≥ 0, got ${c.microBatch}`);
  check(Number.isInteger(c.workers) && c.workers >= 1 && c.workers <= 64, `workers must be an integer in 1..64, got ${c.workers}`);
  return c;
}

/** The learning rate at a (1-based) step: linear warm-up from lr/warmup to lr, then constant. */
export function learningRateAt(step: number, c: Pick<TrainConfig, 'lr' | 'warmupSteps'>): number {
  return c.warmupSteps > 0 ? c.lr * Math.min(step / c.warmupSteps, 1) : c.lr;
}

/** Mirrors the images whose flag is set (data augmentation; the paper uses random flips on CIFAR-10). */
export function flipLeftRight(x: tf.Tensor4D, flags: readonly boolean[]): tf.Tensor4D {
  if (flags.length !== x.shape[0]) throw new Error(`${flags.length} flip flags for ${x.shape[0]} images`);
  if (!flags.some(Boolean)) return tf.clone(x);
  return tf.tidy(() => {
    const mask = tf.tensor4d(flags.map((f) => (f ? 1 : 0)), [flags.length, 1, 1, 1], 'bool');
    return tf.where(tf.broadcastTo(mask, x.shape), tf.reverse(x, 2), x);
  });
}

/** Parameters whose optimizer state is kept as one flat vector each for m, v and the EMA. */
interface Chunk {
  names: string[];
  sizes: number[];
  shapes: number[][];
  ema: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * Largest number of elements per optimizer chunk (8 MB of float32). Optimizer state is flat per chunk so that Adam,
 * clipping and the EMA take a dozen kernel launches per chunk instead of a dozen per parameter tensor (with ~300
 * tensors the per-tensor form spent most of a small model's step launching kernels), while each chunk's temporaries
 * are freed before the next chunk starts: one flat vector for the paper's 35.7M-parameter model needed ~20 live
 * copies (3 GB) and ran out of the wasm backend's 4 GB heap.
 */
export const OPTIMIZER_CHUNK_ELEMENTS = 1 << 21;

export class Trainer {
  readonly config: TrainConfig;
  private stepCount = 0;
  private rng: Rng;
  private readonly names: string[];
  private readonly shapes = new Map<string, number[]>();
  private readonly chunks: Chunk[] = [];
  private pool: ModelWorkerPool | null = null;
  private poolStarting: Promise<ModelWorkerPool | null> | null = null;

  constructor(
    readonly model: UNet,
    readonly diffusion: GaussianDiffusion,
    config: Partial<TrainConfig>,
    seedOrState: number | RngState,
  ) {
    this.config = validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, ...config });
    this.rng = new Rng(seedOrState);
    this.names = [...model.params.keys()];
    let group: string[] = [];
    let elements = 0;
    const close = () => {
      if (group.length === 0) return;
      const shapes = group.map((n) => model.params.get(n)!.shape);
      const flat = this.flatten(group.map((n) => model.params.get(n)!));
      this.chunks.push({
        names: group,
        shapes,
        sizes: shapes.map((sh) => sh.reduce((a, b) => a * b, 1)),
        ema: tf.variable(flat, false),
        // Inside tidy: a variable shares its initial tensor's buffer, so an initial tensor left alive would keep the
        // zeros in memory after the first update (two copies of the weights, 273 MB for the cifar10 preset).
        m: tf.tidy(() => tf.variable(tf.zerosLike(flat), false)),
        v: tf.tidy(() => tf.variable(tf.zerosLike(flat), false)),
      });
      flat.dispose();
      group = [];
      elements = 0;
    };
    for (const name of this.names) {
      const p = model.params.get(name)!;
      this.shapes.set(name, p.shape);
      if (elements > 0 && elements + p.size > OPTIMIZER_CHUNK_ELEMENTS) close();
      group.push(name);
      elements += p.size;
    }
    close();
  }

  get step(): number {
    return this.stepCount;
  }

  rngState(): RngState {
    return this.rng.state();
  }

  private flatten(ts: tf.Tensor[]): tf.Tensor1D {
    return tf.tidy(() => tf.concat(ts.map((t) => tf.reshape(t, [-1]))) as tf.Tensor1D);
  }

  private unflatten(pick: (c: Chunk) => tf.Variable): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const c of this.chunks) {
      // tidy keeps only tensors it can see in its result (arrays, not Maps).
      const parts = tf.tidy(() => tf.split(pick(c), c.sizes).map((part, i) => tf.reshape(part, c.shapes[i])));
      c.names.forEach((n, i) => out.set(n, parts[i]));
    }
    return out;
  }

  /** The EMA weights by parameter name (new tensors: the caller disposes them). Sample from these. */
  emaParams(): Map<string, tf.Tensor> {
    return this.unflatten((c) => c.ema);
  }

  /** Adam's moment estimates by parameter name (new tensors: the caller disposes them). */
  adamMoments(): { m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> } {
    return { m: this.unflatten((c) => c.m), v: this.unflatten((c) => c.v) };
  }

  /** Restores optimizer state, EMA, step and RNG (the model's own weights are restored by the caller). */
  restore(state: TrainerState): void {
    const collect = (src: Map<string, tf.Tensor>, names: string[], what: string) =>
      names.map((name) => {
        const t = src.get(name);
        if (!t) throw new Error(`checkpoint has no ${what} for '${name}'`);
        const want = this.shapes.get(name)!;
        if (t.shape.join(',') !== want.join(',')) throw new Error(`${what} for '${name}' has shape [${t.shape}], expected [${want}]`);
        return t;
      });
    // Validate everything before changing anything.
    for (const c of this.chunks) {
      collect(state.ema, c.names, 'EMA weights');
      collect(state.adamM, c.names, 'Adam first moment');
      collect(state.adamV, c.names, 'Adam second moment');
    }
    for (const c of this.chunks) {
      for (const [dst, src, what] of [
        [c.ema, state.ema, 'EMA weights'],
        [c.m, state.adamM, 'Adam first moment'],
        [c.v, state.adamV, 'Adam second moment'],
      ] as const) {
        const flat = this.flatten(collect(src, c.names, what));
        dst.assign(flat);
        flat.dispose();
      }
    }
    this.stepCount = state.step;
    this.rng = new Rng(state.rng);
  }

  /** The running gradient workers (null before the first step that uses them, or on one thread). */
  get workerPool(): ModelWorkerPool | null {
    return this.pool;
  }

  /** Threads that will compute this step's gradients: `workers` on the CPU backends, else 1. */
  private threads(): number {
    return this.config.workers > 1 && backendUsesWorkers() ? this.config.workers : 1;
  }

  private async ensurePool(threads: number): Promise<ModelWorkerPool | null> {
    if (threads <= 1) return null;
    if (this.pool) return this.pool;
    this.poolStarting ??= ModelWorkerPool.start(threads - 1, workerInit(this.model.params, this.model.config, this.diffusion.schedule.config)).then((p) => (this.pool = p));
    return this.poolStarting;
  }

  /**
   * One training step on a batch x0 ∈ [−1, 1]^{B×H×W×C}. Draws, in order: flips, t, ε, a dropout seed — all
   * before any gradient is computed, so that micro-batches can run on other threads.
   * The loss and gradient norm are read asynchronously (no dataSync: it breaks WebGPU in Node).
   */
  async trainStep(x0: tf.Tensor4D): Promise<StepStats> {
    const { config: cfg, model, diffusion } = this;
    const b = x0.shape[0];
    const flips = cfg.randomFlip ? Array.from({ length: b }, () => this.rng.uniform() < 0.5) : null;
    const t = Array.from({ length: b }, () => this.rng.int(diffusion.T));
    const noiseSeed = this.rng.seed();
    const step = this.stepCount + 1;
    const lr = learningRateAt(step, cfg);
    const threads = this.threads();
    // L_simple is a mean over the batch, so a micro-batch of m images contributes (m/B)·(its mean) to the loss and
    // its gradient: summing those gives exactly the full-batch gradient.
    const mb = microBatchSize(b, threads, cfg.microBatch, maxTrainingMicroBatch(model.config, model.numParams, tf.getBackend()));
    const starts: number[] = [];
    for (let s0 = 0; s0 < b; s0 += mb) starts.push(s0);
    // One draw per step whatever the split, so that micro-batching and threads leave the generator's sequence (and
    // so every later step) unchanged; micro-batch i seeds its dropout masks from base + i·golden ratio (Rng mixes it).
    const dropoutBase = this.rng.seed();
    const dropoutSeeds = starts.map((_, i) => (dropoutBase + Math.imul(i, 0x9e3779b9)) >>> 0);
    const pool = starts.length > 1 ? await this.ensurePool(threads) : null;

    const x = flips ? flipLeftRight(x0, flips) : tf.clone(x0);
    const eps = tf.randomNormal(x.shape, 0, 1, 'float32', noiseSeed) as tf.Tensor4D;
    // The workers' losses and flat gradients, added once this thread's gradients are flattened.
    let remoteParts: { loss: number; grads: Float32Array }[] = [];
    // Assigned inside `accumulate`: the cast keeps TypeScript from narrowing them to their initial values.
    let lossT = null as tf.Scalar | null;
    let grads = {} as tf.NamedTensorMap;
    const accumulate = (value: tf.Scalar, g: tf.NamedTensorMap) => {
      if (lossT === null) {
        lossT = value;
        grads = g;
        return;
      }
      const prevLoss: tf.Scalar = lossT;
      const prevGrads = grads;
      lossT = tf.add<tf.Scalar>(prevLoss, value);
      grads = Object.fromEntries(this.names.map((name) => [name, tf.add(prevGrads[name], g[name])]));
      tf.dispose([prevLoss, value, ...Object.values(prevGrads), ...Object.values(g)]);
    };
    try {
      // Micro-batch i runs on thread i mod (workers + 1); thread 0 is this one.
      const mine = starts.map((_, i) => i).filter((i) => !pool || i % (pool.size + 1) === 0);
      let remote: Promise<{ loss: number; grads: Float32Array }[]> | null = null;
      if (pool) {
        const [hostX, hostEps] = (await Promise.all([x.data(), eps.data()])) as [Float32Array, Float32Array];
        await pool.setParams(model.params);
        const per = x.shape[1] * x.shape[2] * x.shape[3];
        const jobs: WorkerMicroBatch[][] = Array.from({ length: pool.size }, () => []);
        starts.forEach((start, i) => {
          const k = i % (pool.size + 1);
          if (k === 0) return;
          const n = Math.min(mb, b - start);
          jobs[k - 1].push({
            x: hostX.slice(start * per, (start + n) * per),
            eps: hostEps.slice(start * per, (start + n) * per),
            t: t.slice(start, start + n),
            weight: n / b,
            dropoutSeed: dropoutSeeds[i],
          });
        });
        remote = pool.gradients(x.shape.slice(1), jobs);
        // Keep a rejection from going unhandled while this thread computes its own share.
        remote.catch(() => undefined);
      }
      for (const i of mine) {
        const start = starts[i];
        const n = Math.min(mb, b - start);
        const part = tf.tidy(() => {
          const xs = n === b ? x : tf.slice(x, [start, 0, 0, 0], [n, -1, -1, -1]);
          const es = n === b ? eps : tf.slice(eps, [start, 0, 0, 0], [n, -1, -1, -1]);
          return microBatchGradients(model.params, this.names, model.config, diffusion, xs, t.slice(start, start + n), es, n / b, dropoutSeeds[i]);
        });
        accumulate(part.value, part.grads);
      }
      if (remote) remoteParts = await remote;
    } catch (e) {
      tf.dispose([...(lossT ? [lossT] : []), ...Object.values(grads)]);
      throw e;
    } finally {
      tf.dispose([x, eps]);
    }
    if (lossT === null) throw new Error('empty batch');
    const flatGrads: tf.Tensor1D[] = [];
    try {
      // Each chunk's gradients flattened once, for both the norm and the update; the per-tensor gradients go as
      // soon as they are copied, so this holds no more than before.
      for (const c of this.chunks) {
        const parts = c.names.map((n) => grads[n]);
        flatGrads.push(this.flatten(parts));
        tf.dispose(parts);
      }
      // The workers' gradients come flat, in parameter order, which is the chunks' order: each chunk's slice goes
      // straight into that chunk's flat gradient, instead of being split into per-tensor copies first (for cifar10
      // that held ~3 extra weight-sized buffers at once).
      let offset = 0;
      this.chunks.forEach((c, ci) => {
        const length = c.sizes.reduce((p, q) => p + q, 0);
        const own = flatGrads[ci];
        flatGrads[ci] = tf.tidy(() => remoteParts.reduce<tf.Tensor1D>((sum, r) => tf.add(sum, tf.tensor1d(r.grads.subarray(offset, offset + length))), own));
        if (flatGrads[ci] !== own) own.dispose();
        offset += length;
      });
      if (remoteParts.length > 0) {
        const own: tf.Scalar = lossT;
        lossT = tf.tidy(() => tf.add<tf.Scalar>(own, tf.scalar(remoteParts.reduce((s, r) => s + r.loss, 0))));
        own.dispose();
      }
      // A chain of adds rather than addN: WebGPU binds one buffer per addN input and allows only a few per shader.
      const normT = tf.tidy(() => tf.sqrt(flatGrads.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))));
      // Clip at global norm: scale = c / max(‖g‖, c) (1 when the norm is below the threshold).
      const scale = tf.tidy(() => (cfg.gradClip > 0 ? tf.div(cfg.gradClip, tf.maximum(normT, cfg.gradClip)) : tf.scalar(1)));
      const stepSize = lr / (1 - cfg.adamBeta1 ** step);
      const bc2 = 1 - cfg.adamBeta2 ** step;
      this.chunks.forEach((c, ci) => {
        tf.tidy(() => {
          const vars = c.names.map((n) => model.params.get(n)!);
          const g = tf.mul(flatGrads[ci], scale);
          // Adam (Kingma & Ba 2015, Algorithm 1) with bias correction.
          const m = tf.add(tf.mul(c.m, cfg.adamBeta1), tf.mul(g, 1 - cfg.adamBeta1));
          const v = tf.add(tf.mul(c.v, cfg.adamBeta2), tf.mul(tf.square(g), 1 - cfg.adamBeta2));
          const denom = tf.add(tf.sqrt(tf.div(v, bc2)), cfg.adamEps);
          const p = tf.sub(this.flatten(vars), tf.mul(tf.div(m, denom), stepSize)) as tf.Tensor1D;
          c.m.assign(m);
          c.v.assign(v);
          // EMA of the weights: ema ← ema − (1 − decay)·(ema − p).
          c.ema.assign(cfg.emaDecay > 0 ? tf.sub(c.ema, tf.mul(tf.sub(c.ema, p), 1 - cfg.emaDecay)) : p);
          const parts = tf.split(p, c.sizes);
          vars.forEach((variable, i) => variable.assign(tf.reshape(parts[i], c.shapes[i])));
        });
        flatGrads[ci].dispose();
      });
      scale.dispose();
      this.stepCount = step;
      const [loss, gradNorm] = await Promise.all([lossT.data(), normT.data()]);
      normT.dispose();
      assertBackendHealthy();
      return { step, loss: loss[0], gradNorm: gradNorm[0], lr, threads: pool ? Math.min(pool.size + 1, starts.length) : 1 };
    } finally {
      tf.dispose([lossT, ...Object.values(grads), ...flatGrads]);
    }
  }

  dispose(): void {
    for (const c of this.chunks) tf.dispose([c.ema, c.m, c.v]);
    this.chunks.length = 0;
    const pool = this.pool;
    this.pool = null;
    this.poolStarting = null;
    if (pool) void pool.dispose();
  }
}
