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
import type { GaussianDiffusion } from './diffusion.ts';
import { Rng, type RngState } from './rng.ts';
import { unetForward, type UNet } from './unet.ts';

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
};

export interface StepStats {
  /** The step number after this update (1 after the first step). */
  step: number;
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used for this update. */
  lr: number;
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

/**
 * Optimizer state is kept as flat vectors (all parameters concatenated in a fixed order) so that Adam, clipping and
 * the EMA are a dozen kernel launches per step instead of a dozen per parameter: with ~300 parameter tensors the
 * per-tensor form spent most of a small model's step in kernel-launch overhead.
 */
export class Trainer {
  readonly config: TrainConfig;
  private stepCount = 0;
  private rng: Rng;
  private readonly names: string[];
  private readonly sizes: number[];
  private readonly shapes: number[][];
  private readonly emaFlat: tf.Variable;
  private readonly mFlat: tf.Variable;
  private readonly vFlat: tf.Variable;

  constructor(
    readonly model: UNet,
    readonly diffusion: GaussianDiffusion,
    config: Partial<TrainConfig>,
    seedOrState: number | RngState,
  ) {
    this.config = validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, ...config });
    this.rng = new Rng(seedOrState);
    this.names = [...model.params.keys()];
    this.shapes = this.names.map((n) => model.params.get(n)!.shape);
    this.sizes = this.shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const flat = this.flatten(this.names.map((n) => model.params.get(n)!));
    this.emaFlat = tf.variable(flat, false);
    this.mFlat = tf.variable(tf.zerosLike(flat), false);
    this.vFlat = tf.variable(tf.zerosLike(flat), false);
    flat.dispose();
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

  private unflatten(flat: tf.Tensor1D): Map<string, tf.Tensor> {
    // tidy keeps only tensors it can see in its result (arrays, not Maps).
    const parts = tf.tidy(() => tf.split(flat, this.sizes).map((part, i) => tf.reshape(part, this.shapes[i])));
    return new Map(this.names.map((n, i) => [n, parts[i]]));
  }

  /** The EMA weights by parameter name (new tensors: the caller disposes them). Sample from these. */
  emaParams(): Map<string, tf.Tensor> {
    return this.unflatten(this.emaFlat as tf.Tensor1D);
  }

  /** Adam's moment estimates by parameter name (new tensors: the caller disposes them). */
  adamMoments(): { m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> } {
    return { m: this.unflatten(this.mFlat as tf.Tensor1D), v: this.unflatten(this.vFlat as tf.Tensor1D) };
  }

  /** Restores optimizer state, EMA, step and RNG (the model's own weights are restored by the caller). */
  restore(state: TrainerState): void {
    const collect = (src: Map<string, tf.Tensor>, what: string) =>
      this.names.map((name, i) => {
        const t = src.get(name);
        if (!t) throw new Error(`checkpoint has no ${what} for '${name}'`);
        if (t.shape.join(',') !== this.shapes[i].join(',')) throw new Error(`${what} for '${name}' has shape [${t.shape}], expected [${this.shapes[i]}]`);
        return t;
      });
    const ema = this.flatten(collect(state.ema, 'EMA weights'));
    const m = this.flatten(collect(state.adamM, 'Adam first moment'));
    const v = this.flatten(collect(state.adamV, 'Adam second moment'));
    this.emaFlat.assign(ema);
    this.mFlat.assign(m);
    this.vFlat.assign(v);
    tf.dispose([ema, m, v]);
    this.stepCount = state.step;
    this.rng = new Rng(state.rng);
  }

  /**
   * One training step on a batch x0 ∈ [−1, 1]^{B×H×W×C}. Draws, in order: flips, t, ε, dropout seeds.
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

    const [lossT, normT] = tf.tidy(() => {
      const x = flips ? flipLeftRight(x0, flips) : x0;
      const eps = tf.randomNormal(x.shape, 0, 1, 'float32', noiseSeed) as tf.Tensor4D;
      const xt = diffusion.qSample(x, t, eps);
      const vars = this.names.map((n) => model.params.get(n)!);
      const { value, grads } = tf.variableGrads(() => {
        const epsTheta = unetForward(model.params, model.config, xt, t, { training: true, nextSeed: () => this.rng.seed() });
        return diffusion.lossSimple(eps, epsTheta);
      }, vars);
      const g = this.flatten(vars.map((v) => grads[v.name]));
      const norm = tf.sqrt(tf.sum(tf.square(g)));
      // Clip at global norm: scale = c / max(‖g‖, c) (1 when the norm is below the threshold).
      const gc = cfg.gradClip > 0 ? tf.mul(g, tf.div(cfg.gradClip, tf.maximum(norm, cfg.gradClip))) : g;
      // Adam (Kingma & Ba 2015, Algorithm 1) with bias correction.
      const m = tf.add(tf.mul(this.mFlat, cfg.adamBeta1), tf.mul(gc, 1 - cfg.adamBeta1));
      const v = tf.add(tf.mul(this.vFlat, cfg.adamBeta2), tf.mul(tf.square(gc), 1 - cfg.adamBeta2));
      const stepSize = lr / (1 - cfg.adamBeta1 ** step);
      const denom = tf.add(tf.sqrt(tf.div(v, 1 - cfg.adamBeta2 ** step)), cfg.adamEps);
      const p = tf.sub(this.flatten(vars), tf.mul(tf.div(m, denom), stepSize)) as tf.Tensor1D;
      this.mFlat.assign(m);
      this.vFlat.assign(v);
      // EMA of the weights: ema ← ema − (1 − decay)·(ema − p).
      this.emaFlat.assign(cfg.emaDecay > 0 ? tf.sub(this.emaFlat, tf.mul(tf.sub(this.emaFlat, p), 1 - cfg.emaDecay)) : p);
      const parts = tf.split(p, this.sizes);
      vars.forEach((variable, i) => variable.assign(tf.reshape(parts[i], this.shapes[i])));
      return [value, norm];
    });
    this.stepCount = step;
    const [loss, gradNorm] = await Promise.all([lossT.data(), normT.data()]);
    tf.dispose([lossT, normT]);
    return { step, loss: loss[0], gradNorm: gradNorm[0], lr };
  }

  dispose(): void {
    tf.dispose([this.emaFlat, this.mFlat, this.vFlat]);
  }
}
