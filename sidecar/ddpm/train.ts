/**
 * One optimisation step of Algorithm 1 (Ho et al. 2020) with the paper's recipe (Appendix B): x_0 from the data
 * (randomly flipped left–right), t ~ Uniform{0..T−1}, ε ~ N(0, I), gradient of L_simple (eq. 14); Adam with
 * linear learning-rate warm-up, gradient clipping at global norm 1, and an exponential moving average of the
 * weights (decay 0.9999), which is what gets sampled from.
 *
 * Every random draw comes from one seeded generator, in a fixed order, so the same seed on the same backend gives
 * the same losses; its state is part of the trainer state for exact resume.
 *
 * What depends on the machine is passed in by the layer that knows it (TrainerHooks; sidecar/parallel/trainer.ts):
 * how many images one pass may take, other threads computing some of the micro-batches (MicroBatchExecutor), the
 * backend's dropout kernel and a check of the backend's health. Without them a step runs whole on this thread.
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './diffusion.ts';
import { microBatchGradients, type MicroBatchGradients } from './gradients.ts';
import type { DropoutFn } from './layers.ts';
import { Rng, type RngState } from './rng.ts';
import { NULL_CLASS, type UNet } from './unet.ts';

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
  /**
   * Warm the EMA up: at step s the decay is min(emaDecay, (1 + s)/(10 + s)) (as diffusers' EMAModel), so that the
   * average of a short run is not mostly the initial weights. Off: emaDecay from the first step (the paper).
   */
  emaWarmup: boolean;
  /**
   * A conditional model's label dropout (Ho & Salimans 2022): the probability that an image trains as "no class", so
   * that one model learns both ε(x, c) and ε(x, ∅) for classifier-free guidance. Unused by unconditional models.
   */
  classDropout: number;
  /** Random left–right flips of the training images (off for digits and text). */
  randomFlip: boolean;
  /**
   * Largest number of images per forward/backward pass; a larger batch is split and its gradients accumulated
   * (0 = the whole batch at once, or one micro-batch per thread). Never more than TrainerHooks.maxMicroBatch allows
   * (on wasm what its 4 GiB heap holds, sidecar/parallel/wasmMemory.ts): a larger batch is split as needed whatever
   * this says.
   */
  microBatch: number;
  /**
   * Threads computing gradients (data parallel over micro-batches, TrainerHooks.executor; sidecar/parallel/): 1 =
   * this thread only. Used on the CPU backends (wasm, cpu); a GPU backend computes on the GPU and ignores it.
   * Without `microBatch`, the batch is split into one micro-batch per thread.
   */
  workers: number;
}

/**
 * Images per micro-batch for a batch of `batch` on `threads` threads: `microBatch` if set (> 0), else an even share
 * per thread, and in either case at most `limit` (what one pass may take: TrainerHooks.maxMicroBatch). Under the
 * limit the split stays even: each thread gets the same number of micro-batches (cifar10 at batch 32 on 2 threads,
 * limit 12: four of 8, not 12 + 12 + 8).
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
  emaWarmup: false,
  classDropout: 0.1,
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
  /** The step's loss by quarter of t (lossByQuarter): where the model is weak shows up here, not in the mean. */
  lossByQuarter: (number | null)[];
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
  check(
    Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0,
    `warmupSteps must be an integer ≥ 0, got ${c.warmupSteps}`,
  );
  check(c.adamBeta1 >= 0 && c.adamBeta1 < 1, `adamBeta1 must be in [0, 1), got ${c.adamBeta1}`);
  check(c.adamBeta2 >= 0 && c.adamBeta2 < 1, `adamBeta2 must be in [0, 1), got ${c.adamBeta2}`);
  check(c.adamEps > 0, `adamEps must be > 0, got ${c.adamEps}`);
  check(c.gradClip >= 0, `gradClip must be ≥ 0, got ${c.gradClip}`);
  check(c.emaDecay >= 0 && c.emaDecay < 1, `emaDecay must be in [0, 1), got ${c.emaDecay}`);
  check(c.classDropout >= 0 && c.classDropout < 1, `classDropout must be in [0, 1), got ${c.classDropout}`);
  check(Number.isInteger(c.microBatch) && c.microBatch >= 0, `microBatch must be an integer ≥ 0, got ${c.microBatch}`);
  check(
    Number.isInteger(c.workers) && c.workers >= 1 && c.workers <= 64,
    `workers must be an integer in 1..64, got ${c.workers}`,
  );
  return c;
}

/** The learning rate at a (1-based) step: linear warm-up from lr/warmup to lr, then constant. */
export function learningRateAt(step: number, c: Pick<TrainConfig, 'lr' | 'warmupSteps'>): number {
  return c.warmupSteps > 0 ? c.lr * Math.min(step / c.warmupSteps, 1) : c.lr;
}

/** The EMA decay used at a (1-based) step: emaDecay, warmed up as (1 + s)/(10 + s) if emaWarmup is on. */
export function emaDecayAt(step: number, c: Pick<TrainConfig, 'emaDecay' | 'emaWarmup'>): number {
  return c.emaWarmup ? Math.min(c.emaDecay, (1 + step) / (10 + step)) : c.emaDecay;
}

/**
 * Classifier-free guidance's label dropout (Ho & Salimans 2022, Algorithm 1): each label becomes NULL_CLASS with
 * probability p, one uniform draw per image in batch order.
 */
export function dropLabels(labels: readonly number[], p: number, rng: Rng): number[] {
  return labels.map((l) => (rng.uniform() < p ? NULL_CLASS : l));
}

/** Mirrors the images whose flag is set (data augmentation; the paper uses random flips on CIFAR-10). */
export function flipLeftRight(x: tf.Tensor4D, flags: readonly boolean[]): tf.Tensor4D {
  if (flags.length !== x.shape[0]) throw new Error(`${flags.length} flip flags for ${x.shape[0]} images`);
  if (!flags.some(Boolean)) return tf.clone(x);
  return tf.tidy(() => {
    const mask = tf.tensor4d(
      flags.map((f) => (f ? 1 : 0)),
      [flags.length, 1, 1, 1],
      'bool',
    );
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

/** One micro-batch of a step: images [start, start + size) of the batch. */
export interface MicroBatch {
  start: number;
  size: number;
  /** size / B: L_simple (eq. 14) is a mean over the batch, so the micro-batches' weighted gradients sum to the batch's. */
  weight: number;
  /** Seeds its dropout masks. */
  dropoutSeed: number;
}

/**
 * A step's batch as Algorithm 1 draws it: x_0 (flipped where drawn), and t and ε for each image; for a conditional
 * model each image's class, NULL_CLASS where the label was dropped.
 */
export interface StepBatch {
  x0: tf.Tensor4D;
  t: readonly number[];
  eps: tf.Tensor4D;
  labels?: readonly number[];
}

/** Weighted loss and gradients of micro-batches computed elsewhere, summed; the gradients flat, in parameter order. */
export interface FlatGradients {
  loss: number;
  grads: Float32Array;
  /** The per-image losses of the micro-batches computed there (gradients.ts), by the first image's place in the batch. */
  perImage?: { start: number; values: Float32Array }[];
}

/** Weighted loss and gradients summed over micro-batches. */
type GradientSum = Pick<MicroBatchGradients, 'value' | 'grads'>;

/** The mean loss by quarter of the timesteps (t < T/4, …, t ≥ 3T/4), null where the batch had no t: Ho's loss by t. */
export function lossByQuarter(perImage: ArrayLike<number>, t: readonly number[], T: number): (number | null)[] {
  const sum = [0, 0, 0, 0];
  const count = [0, 0, 0, 0];
  for (let i = 0; i < t.length; i++) {
    const q = Math.min(3, Math.floor((4 * t[i]) / T));
    sum[q] += perImage[i];
    count[q]++;
  }
  return sum.map((s, q) => (count[q] ? s / count[q] : null));
}

/** What a MicroBatchExecutor did with a step's micro-batches. */
export interface DispatchedMicroBatches {
  /** The micro-batches left to this thread, in order. */
  local: number[];
  /** The other threads' results, in thread order (a thread without work answers a zero loss and gradient). */
  remote: Promise<FlatGradients[]>;
  /** Threads that got work, this one included. */
  threads: number;
}

/**
 * Computes some of a step's micro-batches on other threads (sidecar/parallel/ does it with worker threads) by the
 * same function as this thread (gradients.ts) from the same inputs, so that where a micro-batch ran changes nothing
 * but the order of floating-point sums.
 */
export interface MicroBatchExecutor {
  /** The threads, this one included, that compute a step when `workers` are asked for (TrainConfig.workers). */
  threads(workers: number): number;
  /**
   * Hands out a step's micro-batches to `threads` threads, with the model's current weights, and resolves once they
   * are under way. Called only with at least two micro-batches and two threads.
   */
  dispatch(batch: StepBatch, microBatches: readonly MicroBatch[], threads: number): Promise<DispatchedMicroBatches>;
  /** Stops its threads; the Trainer calls it from its own dispose(). */
  dispose(): void;
}

/** What the layer that knows the machine passes to a Trainer (sidecar/parallel/trainer.ts). All optional. */
export interface TrainerHooks {
  /** The most images one forward/backward pass may take (memory), asked at every step. Default: no limit. */
  maxMicroBatch?: () => number;
  /** Other threads for micro-batches; the Trainer disposes it with itself. Default: this thread computes all. */
  executor?: MicroBatchExecutor;
  /** How dropout is computed (the backend's own kernel). Default: layers.ts's host-drawn masks. */
  dropout?: DropoutFn;
  /** Called once a step's results have been read; throws if they cannot be trusted (a GPU that reported an error). */
  checkHealth?: () => void;
}

/** Algorithm 1's draws for one step, in the order they are made. */
interface StepDraws {
  /** Which images are mirrored (null: flips are off). */
  flips: boolean[] | null;
  t: number[];
  /** A conditional model's labels after dropout (Ho & Salimans 2022); undefined for an unconditional one. */
  labels?: number[];
  /** Seeds ε ~ N(0, I). */
  noiseSeed: number;
}

/** ‖g‖ over every chunk: a chain of adds rather than addN, since WebGPU binds one buffer per addN input and allows few. */
function globalNorm(flatGrads: readonly tf.Tensor1D[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(flatGrads.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))) as tf.Scalar);
}

/** Clipping at global norm c: g ← g · c / max(‖g‖, c), i.e. a scale of 1 below the threshold (c = 0: no clipping). */
function clipScale(norm: tf.Scalar, c: number): tf.Scalar {
  return tf.tidy(() => (c > 0 ? tf.div<tf.Scalar>(c, tf.maximum(norm, c)) : tf.scalar(1)));
}

/**
 * Adam (Kingma & Ba 2015, Algorithm 1) on a chunk's gradient g at a (1-based) step: updates the chunk's moments
 * m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², and returns the step to subtract from θ, lr · m̂ / (√v̂ + ε) with the
 * bias-corrected m̂ = m / (1 − β₁^step), v̂ = v / (1 − β₂^step). Call inside tf.tidy.
 */
function adamStep(c: Chunk, g: tf.Tensor1D, step: number, lr: number, cfg: TrainConfig): tf.Tensor1D {
  const m = tf.add(tf.mul(c.m, cfg.adamBeta1), tf.mul(g, 1 - cfg.adamBeta1));
  const v = tf.add(tf.mul(c.v, cfg.adamBeta2), tf.mul(tf.square(g), 1 - cfg.adamBeta2));
  const denom = tf.add(tf.sqrt(tf.div(v, 1 - cfg.adamBeta2 ** step)), cfg.adamEps);
  c.m.assign(m);
  c.v.assign(v);
  return tf.mul(tf.div(m, denom), lr / (1 - cfg.adamBeta1 ** step));
}

/** The EMA of the weights (Appendix B: decay 0.9999), ema ← ema − (1 − decay)·(ema − θ); decay 0 keeps θ itself. */
function emaUpdate(ema: tf.Variable, theta: tf.Tensor1D, decay: number): void {
  ema.assign(decay > 0 ? tf.sub(ema, tf.mul(tf.sub(ema, theta), 1 - decay)) : theta);
}

export class Trainer {
  readonly config: TrainConfig;
  private stepCount = 0;
  private rng: Rng;
  private readonly names: string[];
  private readonly shapes = new Map<string, number[]>();
  private readonly chunks: Chunk[] = [];

  constructor(
    readonly model: UNet,
    readonly diffusion: GaussianDiffusion,
    config: Partial<TrainConfig>,
    seedOrState: number | RngState,
    private readonly hooks: TrainerHooks = {},
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
        if (t.shape.join(',') !== want.join(','))
          throw new Error(`${what} for '${name}' has shape [${t.shape}], expected [${want}]`);
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

  /**
   * One step of Algorithm 1 on a batch x0 ∈ [−1, 1]^{B×H×W×C}. It draws, in order: flips, t, ε (a seed), the
   * micro-batches' dropout (a seed), all before any gradient is computed, so that micro-batches can run on other
   * threads. The loss and gradient norm are read asynchronously (no dataSync: it breaks WebGPU in Node).
   */
  async trainStep(x0: tf.Tensor4D, labels?: readonly number[]): Promise<StepStats> {
    const cfg = this.config;
    const b = x0.shape[0];
    const step = this.stepCount + 1;
    // Lines 2–4: x_0 ~ q(x_0) (this batch, mirrored at random), t ~ Uniform({1, …, T}) (0-based here), ε ~ N(0, I);
    // for a conditional model, its class c, dropped to ∅ with probability classDropout.
    const draws = this.drawStep(b, labels);
    // L_simple (eq. 14) is a mean over the batch: its gradient is the sum of the micro-batches' weighted gradients.
    const plan = this.planMicroBatches(b);
    // Line 5: ∇_θ ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖², as one flat vector per optimizer chunk …
    const { loss, grads, threads, perImage } = await this.accumulateGradients(
      x0,
      draws,
      plan.microBatches,
      plan.threads,
    );
    let norm: tf.Scalar | null = null;
    try {
      // … and the descent step, with the paper's recipe (Appendix B): clip to global norm `gradClip`, Adam at the
      // warmed-up learning rate, then the EMA of the weights.
      norm = globalNorm(grads);
      const scale = clipScale(norm, cfg.gradClip);
      const lr = learningRateAt(step, cfg);
      this.updateWeights(grads, scale, step, lr);
      scale.dispose();
      this.stepCount = step;
      const [lossValue, normValue] = await Promise.all([loss.data(), norm.data()]);
      this.hooks.checkHealth?.();
      const byQuarter = lossByQuarter(perImage, draws.t, this.diffusion.T);
      return { step, loss: lossValue[0], gradNorm: normValue[0], lr, threads, lossByQuarter: byQuarter };
    } finally {
      tf.dispose([loss, ...grads, ...(norm ? [norm] : [])]);
    }
  }

  /**
   * Algorithm 1's draws for a batch of b images (lines 2–4): flips (if on), t, the dropped labels (conditional models
   * only, so that unconditional runs draw exactly as before), then the seed of ε.
   */
  private drawStep(b: number, labels?: readonly number[]): StepDraws {
    const flips = this.config.randomFlip ? Array.from({ length: b }, () => this.rng.uniform() < 0.5) : null;
    const t = Array.from({ length: b }, () => this.rng.int(this.diffusion.T));
    let kept: number[] | undefined;
    if (this.model.config.numClasses) {
      if (!labels || labels.length !== b)
        throw new Error(`a conditional model trains on labelled images: ${b} images, ${labels?.length ?? 0} labels`);
      kept = dropLabels(labels, this.config.classDropout, this.rng);
    } else if (labels) throw new Error('this model is not class-conditional: train it without labels');
    return { flips, t, ...(kept ? { labels: kept } : {}), noiseSeed: this.rng.seed() };
  }

  /**
   * The batch's micro-batches (microBatchSize: as set, else one share per thread, never more than one pass may take)
   * and their dropout seeds. One draw per step whatever the split, so that micro-batching and threads leave the
   * generator's sequence (and so every later step) unchanged; micro-batch i seeds its dropout masks from
   * base + i·golden ratio (Rng mixes it).
   */
  private planMicroBatches(b: number): { microBatches: MicroBatch[]; threads: number } {
    const threads = this.hooks.executor?.threads(this.config.workers) ?? 1;
    const size = microBatchSize(b, threads, this.config.microBatch, this.hooks.maxMicroBatch?.() ?? Infinity);
    const dropoutBase = this.rng.seed();
    const microBatches: MicroBatch[] = [];
    for (let start = 0, i = 0; start < b; start += size, i++) {
      const n = Math.min(size, b - start);
      microBatches.push({ start, size: n, weight: n / b, dropoutSeed: (dropoutBase + Math.imul(i, 0x9e3779b9)) >>> 0 });
    }
    return { microBatches, threads };
  }

  /**
   * The weighted loss and gradients of every micro-batch, summed: this thread's (micro-batch by micro-batch) and the
   * executor's threads' (flat), as one flat gradient per optimizer chunk. x_0 is mirrored and ε drawn here, and
   * released as soon as the gradients are computed.
   */
  private async accumulateGradients(
    x0: tf.Tensor4D,
    draws: StepDraws,
    microBatches: readonly MicroBatch[],
    threads: number,
  ): Promise<{ loss: tf.Scalar; grads: tf.Tensor1D[]; threads: number; perImage: Float32Array }> {
    const batch: StepBatch = {
      x0: draws.flips ? flipLeftRight(x0, draws.flips) : tf.clone(x0),
      t: draws.t,
      eps: tf.randomNormal(x0.shape, 0, 1, 'float32', draws.noiseSeed) as tf.Tensor4D,
      ...(draws.labels ? { labels: draws.labels } : {}),
    };
    let sum: GradientSum | null = null;
    let remote: FlatGradients[] = [];
    let used = 1;
    const losses: { start: number; t: tf.Tensor1D }[] = [];
    const perImage = new Float32Array(x0.shape[0]);
    try {
      const executor = this.hooks.executor;
      const dispatched =
        executor && threads > 1 && microBatches.length > 1
          ? await executor.dispatch(batch, microBatches, threads)
          : null;
      for (const i of dispatched?.local ?? microBatches.keys())
        sum = this.addMicroBatch(sum, batch, microBatches[i], losses);
      if (dispatched) {
        remote = await dispatched.remote;
        used = dispatched.threads;
      }
      for (const l of losses) perImage.set((await l.t.data()) as Float32Array, l.start);
      for (const r of remote) for (const p of r.perImage ?? []) perImage.set(p.values, p.start);
    } catch (e) {
      if (sum) tf.dispose([sum.value, ...Object.values(sum.grads)]);
      throw e;
    } finally {
      tf.dispose([batch.x0, batch.eps, ...losses.map((l) => l.t)]);
    }
    if (sum === null) throw new Error('empty batch');
    return { ...this.chunkGradients(sum, remote), threads: used, perImage };
  }

  /** `sum` plus one micro-batch's weighted loss and gradients (gradients.ts); `sum` is consumed. */
  private addMicroBatch(
    sum: GradientSum | null,
    batch: StepBatch,
    mb: MicroBatch,
    losses: { start: number; t: tf.Tensor1D }[],
  ): GradientSum {
    const { model, diffusion } = this;
    const b = batch.x0.shape[0];
    const part = tf.tidy(() => {
      const xs = mb.size === b ? batch.x0 : tf.slice(batch.x0, [mb.start, 0, 0, 0], [mb.size, -1, -1, -1]);
      const es = mb.size === b ? batch.eps : tf.slice(batch.eps, [mb.start, 0, 0, 0], [mb.size, -1, -1, -1]);
      const t = batch.t.slice(mb.start, mb.start + mb.size);
      return microBatchGradients(
        model.params,
        this.names,
        model.config,
        diffusion,
        xs,
        t,
        es,
        mb.weight,
        mb.dropoutSeed,
        this.hooks.dropout,
        batch.labels?.slice(mb.start, mb.start + mb.size),
      );
    });
    losses.push({ start: mb.start, t: part.perImage });
    if (sum === null) return { value: part.value, grads: part.grads };
    const added: GradientSum = {
      value: tf.add<tf.Scalar>(sum.value, part.value),
      grads: Object.fromEntries(this.names.map((name) => [name, tf.add(sum.grads[name], part.grads[name])])),
    };
    tf.dispose([sum.value, part.value, ...Object.values(sum.grads), ...Object.values(part.grads)]);
    return added;
  }

  /**
   * This thread's gradients flattened chunk by chunk (each per-tensor gradient released once copied) with the other
   * threads' added: theirs come flat, in parameter order, which is the chunks' order, so each chunk's slice goes
   * straight into that chunk's sum (for cifar10, splitting them into per-tensor copies first held ~3 extra weight-sized
   * buffers at once). Consumes `sum`.
   */
  private chunkGradients(
    sum: GradientSum,
    remote: readonly FlatGradients[],
  ): { loss: tf.Scalar; grads: tf.Tensor1D[] } {
    let loss = sum.value;
    const flat: tf.Tensor1D[] = [];
    try {
      for (const c of this.chunks) {
        const parts = c.names.map((n) => sum.grads[n]);
        flat.push(this.flatten(parts));
        tf.dispose(parts);
      }
      let offset = 0;
      this.chunks.forEach((c, ci) => {
        const length = c.sizes.reduce((p, q) => p + q, 0);
        const own = flat[ci];
        flat[ci] = tf.tidy(() =>
          remote.reduce<tf.Tensor1D>(
            (acc, r) => tf.add(acc, tf.tensor1d(r.grads.subarray(offset, offset + length))),
            own,
          ),
        );
        if (flat[ci] !== own) own.dispose();
        offset += length;
      });
      if (remote.length > 0) {
        const own = loss;
        loss = tf.tidy(() => tf.add<tf.Scalar>(own, tf.scalar(remote.reduce((s, r) => s + r.loss, 0))));
        own.dispose();
      }
      return { loss, grads: flat };
    } catch (e) {
      tf.dispose([loss, ...Object.values(sum.grads), ...flat]);
      throw e;
    }
  }

  /**
   * θ ← θ − Adam step on the clipped gradient g · scale, then the EMA of θ, chunk by chunk: each chunk's temporaries
   * and gradient are released before the next chunk starts.
   */
  private updateWeights(grads: readonly tf.Tensor1D[], scale: tf.Scalar, step: number, lr: number): void {
    this.chunks.forEach((c, ci) => {
      tf.tidy(() => {
        const vars = c.names.map((n) => this.model.params.get(n)!);
        const delta = adamStep(c, tf.mul(grads[ci], scale), step, lr, this.config);
        const theta = tf.sub<tf.Tensor1D>(this.flatten(vars), delta);
        emaUpdate(c.ema, theta, emaDecayAt(step, this.config));
        const parts = tf.split(theta, c.sizes);
        vars.forEach((variable, i) => variable.assign(tf.reshape(parts[i], c.shapes[i])));
      });
      grads[ci].dispose();
    });
  }

  dispose(): void {
    for (const c of this.chunks) tf.dispose([c.ema, c.m, c.v]);
    this.chunks.length = 0;
    this.hooks.executor?.dispose();
  }
}
