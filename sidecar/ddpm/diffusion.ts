/**
 * The Gaussian diffusion of Ho et al. 2020 as pure tensor functions: the forward process q (eq. 4), the
 * posterior q(x_{t−1}|x_t, x_0) (eqs. 6–7), the ε-parameterised reverse step p_θ(x_{t−1}|x_t) (eq. 11 and
 * Algorithm 2), the DDIM step (Song et al. 2021, eq. 12) and L_simple (eq. 14).
 *
 * Timesteps are host integers, one per batch element (0-based, as in the original code). Coefficients are looked
 * up in the float64 schedule (or derived from it in float64, for DDIM) and uploaded as tiny float32 tensors
 * shaped [B, 1, 1, 1]: no coefficient is ever computed in float32, which matters for DDIM near t = 0, where
 * 1 − ᾱ_prev − σ² cancels almost completely.
 *
 * Every function returns new tensors and disposes its intermediates (callers own the results).
 */
import * as tf from '@tensorflow/tfjs';
import type { Schedule, ScheduleField } from './schedule.ts';

/** σ_t² of the reverse process: β_t ("fixedlarge", the paper's CIFAR-10 choice) or β̃_t ("fixedsmall"). */
export type VarianceType = 'fixedlarge' | 'fixedsmall';

export interface MeanVariance {
  mean: tf.Tensor4D;
  /** [B, 1, 1, 1] */
  variance: tf.Tensor4D;
  /** [B, 1, 1, 1] */
  logVariance: tf.Tensor4D;
}

export interface StepResult {
  /** x_{t−1} (or x at the previous DDIM timestep). */
  xPrev: tf.Tensor4D;
  /** x̂_0, the model's current estimate of the clean image. */
  predX0: tf.Tensor4D;
}

export interface PStepOptions {
  varianceType: VarianceType;
  /** Clip x̂_0 to [−1, 1] before forming the posterior mean (the original sampler's default). */
  clip: boolean;
}

export interface DdimStepOptions {
  /** η = 0: deterministic DDIM; η = 1: the DDPM posterior variance on the sub-sequence. */
  eta: number;
  /** Clip x̂_0 to [−1, 1] (ε is not re-derived afterwards, as in diffusers' DDIMScheduler). */
  clip: boolean;
}

function checkTimesteps(schedule: Schedule, t: readonly number[], allowMinusOne = false): void {
  for (const ti of t) {
    if (!Number.isInteger(ti) || ti < (allowMinusOne ? -1 : 0) || ti >= schedule.T) {
      throw new Error(`timestep ${ti} is outside 0..${schedule.T - 1}`);
    }
  }
}

function column(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

export class GaussianDiffusion {
  constructor(readonly schedule: Schedule) {}

  get T(): number {
    return this.schedule.T;
  }

  /** Schedule values at t (float32 cast of the float64 schedule), shaped [B, 1, 1, 1] to broadcast over images. */
  coef(field: ScheduleField, t: readonly number[]): tf.Tensor4D {
    checkTimesteps(this.schedule, t);
    const src = this.schedule.f32[field];
    return column(t.map((ti) => src[ti]));
  }

  private checkBatch(x: tf.Tensor, t: readonly number[]): void {
    if (x.rank !== 4) throw new Error(`expected an NHWC image batch (rank 4), got shape [${x.shape.join(', ')}]`);
    if (x.shape[0] !== t.length) throw new Error(`batch of ${x.shape[0]} images but ${t.length} timesteps`);
  }

  /** q(x_t | x_0) (eq. 4): x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε. */
  qSample(x0: tf.Tensor4D, t: readonly number[], noise: tf.Tensor4D): tf.Tensor4D {
    this.checkBatch(x0, t);
    return tf.tidy(() =>
      tf.add<tf.Tensor4D>(
        tf.mul(this.coef('sqrt_alphas_cumprod', t), x0),
        tf.mul(this.coef('sqrt_one_minus_alphas_cumprod', t), noise),
      ),
    );
  }

  /** x̂_0 = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε_θ (eq. 4 solved for x_0), optionally clipped to the data range. */
  predictX0FromEps(xt: tf.Tensor4D, t: readonly number[], eps: tf.Tensor4D, clip: boolean): tf.Tensor4D {
    this.checkBatch(xt, t);
    return tf.tidy(() => {
      const x0 = tf.sub<tf.Tensor4D>(
        tf.mul(this.coef('sqrt_recip_alphas_cumprod', t), xt),
        tf.mul(this.coef('sqrt_recipm1_alphas_cumprod', t), eps),
      );
      return clip ? tf.clipByValue(x0, -1, 1) : x0;
    });
  }

  /** q(x_{t−1} | x_t, x_0) (eqs. 6–7): mean μ̃_t, variance β̃_t and its clipped log. */
  qPosterior(x0: tf.Tensor4D, xt: tf.Tensor4D, t: readonly number[]): MeanVariance {
    this.checkBatch(xt, t);
    return {
      mean: tf.tidy(() =>
        tf.add<tf.Tensor4D>(
          tf.mul(this.coef('posterior_mean_coef1', t), x0),
          tf.mul(this.coef('posterior_mean_coef2', t), xt),
        ),
      ),
      variance: this.coef('posterior_variance', t),
      logVariance: this.coef('posterior_log_variance_clipped', t),
    };
  }

  /** The reverse-process variance σ_t² and its log for the chosen variance type (orig p_mean_variance). */
  modelVariance(t: readonly number[], varianceType: VarianceType): { variance: tf.Tensor4D; logVariance: tf.Tensor4D } {
    if (varianceType === 'fixedlarge') {
      return { variance: this.coef('betas', t), logVariance: this.coef('fixedlarge_log_variance', t) };
    }
    if (varianceType === 'fixedsmall') {
      return {
        variance: this.coef('posterior_variance', t),
        logVariance: this.coef('posterior_log_variance_clipped', t),
      };
    }
    throw new Error(`unknown variance type '${String(varianceType)}' (fixedlarge or fixedsmall)`);
  }

  /** p_θ(x_{t−1} | x_t) with the ε-parameterisation: mean = μ̃_t(x̂_0(x_t, ε_θ), x_t), variance σ_t². */
  pMeanVariance(
    xt: tf.Tensor4D,
    t: readonly number[],
    epsTheta: tf.Tensor4D,
    opts: PStepOptions,
  ): MeanVariance & { predX0: tf.Tensor4D } {
    const predX0 = this.predictX0FromEps(xt, t, epsTheta, opts.clip);
    const mean = tf.tidy(() =>
      tf.add<tf.Tensor4D>(
        tf.mul(this.coef('posterior_mean_coef1', t), predX0),
        tf.mul(this.coef('posterior_mean_coef2', t), xt),
      ),
    );
    return { mean, predX0, ...this.modelVariance(t, opts.varianceType) };
  }

  /**
   * One ancestral step (Algorithm 2, line 4): x_{t−1} = μ_θ + σ_t·z, with z = 0 at t = 0 so that the last step
   * returns the mean. `z` is standard normal noise shaped like x_t.
   */
  pSampleStep(
    xt: tf.Tensor4D,
    t: readonly number[],
    epsTheta: tf.Tensor4D,
    z: tf.Tensor4D,
    opts: PStepOptions,
  ): StepResult {
    const mv = this.pMeanVariance(xt, t, epsTheta, opts);
    const xPrev = tf.tidy(() => {
      const nonzero = column(t.map((ti) => (ti === 0 ? 0 : 1)));
      return tf.add<tf.Tensor4D>(mv.mean, tf.mul(tf.mul(nonzero, tf.exp(tf.mul(0.5, mv.logVariance))), z));
    });
    tf.dispose([mv.mean, mv.variance, mv.logVariance]);
    return { xPrev, predX0: mv.predX0 };
  }

  /**
   * The DDIM coefficients in float64 for a step t → tPrev (tPrev = −1 means "to x_0", with ᾱ_prev = 1):
   * σ = η·√((1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev)), direction coefficient √(1−ᾱ_prev−σ²).
   */
  ddimCoefficients(t: readonly number[], tPrev: readonly number[], eta: number) {
    checkTimesteps(this.schedule, t);
    checkTimesteps(this.schedule, tPrev, true);
    if (!(eta >= 0)) throw new Error(`DDIM eta must be ≥ 0, got ${eta}`);
    const ac = this.schedule.f64.alphas_cumprod;
    const n = t.length;
    const out = {
      alphaCumprod: new Float64Array(n),
      alphaCumprodPrev: new Float64Array(n),
      recipSqrtAc: new Float64Array(n),
      sqrtOneMinusAcOverSqrtAc: new Float64Array(n),
      sqrtAcPrev: new Float64Array(n),
      dirCoef: new Float64Array(n),
      variance: new Float64Array(n),
      sigma: new Float64Array(n),
    };
    for (let i = 0; i < n; i++) {
      const a = ac[t[i]];
      const ap = tPrev[i] >= 0 ? ac[tPrev[i]] : 1;
      const variance = ((1 - ap) / (1 - a)) * (1 - a / ap);
      const sigma = eta * Math.sqrt(variance);
      out.alphaCumprod[i] = a;
      out.alphaCumprodPrev[i] = ap;
      out.recipSqrtAc[i] = 1 / Math.sqrt(a);
      out.sqrtOneMinusAcOverSqrtAc[i] = Math.sqrt(1 - a) / Math.sqrt(a);
      out.sqrtAcPrev[i] = Math.sqrt(ap);
      out.dirCoef[i] = Math.sqrt(Math.max(1 - ap - sigma * sigma, 0));
      out.variance[i] = variance;
      out.sigma[i] = sigma;
    }
    return out;
  }

  /**
   * One DDIM step (Song et al. 2021, eq. 12): x_prev = √ᾱ_prev·x̂_0 + √(1−ᾱ_prev−σ²)·ε_θ + σ·z.
   * `z` may be null when η = 0.
   */
  ddimStep(
    xt: tf.Tensor4D,
    t: readonly number[],
    tPrev: readonly number[],
    epsTheta: tf.Tensor4D,
    z: tf.Tensor4D | null,
    opts: DdimStepOptions,
  ): StepResult {
    this.checkBatch(xt, t);
    if (tPrev.length !== t.length) throw new Error('t and tPrev must have the same length');
    const c = this.ddimCoefficients(t, tPrev, opts.eta);
    if (z === null && c.sigma.some((s) => s > 0)) throw new Error('DDIM with eta > 0 needs noise z');
    const predX0 = tf.tidy(() => {
      const x0 = tf.sub<tf.Tensor4D>(
        tf.mul(column(c.recipSqrtAc), xt),
        tf.mul(column(c.sqrtOneMinusAcOverSqrtAc), epsTheta),
      );
      return opts.clip ? tf.clipByValue(x0, -1, 1) : x0;
    });
    const xPrev = tf.tidy(() => {
      const mean = tf.add<tf.Tensor4D>(tf.mul(column(c.sqrtAcPrev), predX0), tf.mul(column(c.dirCoef), epsTheta));
      return z === null ? mean : tf.add<tf.Tensor4D>(mean, tf.mul(column(c.sigma), z));
    });
    return { xPrev, predX0 };
  }

  /** L_simple (eq. 14): the mean squared error between the true and the predicted noise. */
  lossSimple(eps: tf.Tensor, epsTheta: tf.Tensor): tf.Scalar {
    return tf.tidy(() => tf.mean(tf.squaredDifference(eps, epsTheta)) as tf.Scalar);
  }

  /**
   * The latent mix used for interpolation (paper §4.3, Fig. 8): both images are diffused to the same t with
   * their own noise and mixed linearly, x̄_t = (1−λ)·x_t(x_1) + λ·x_t(x_2). Denoising from t is the sampler's job.
   */
  interpolateLatents(
    x1: tf.Tensor4D,
    x2: tf.Tensor4D,
    t: number,
    eps1: tf.Tensor4D,
    eps2: tf.Tensor4D,
    lambda: number,
  ): tf.Tensor4D {
    if (!(lambda >= 0 && lambda <= 1)) throw new Error(`interpolation λ must be in [0, 1], got ${lambda}`);
    const ts = new Array<number>(x1.shape[0]).fill(t);
    return tf.tidy(() => {
      const a = this.qSample(x1, ts, eps1);
      const b = this.qSample(x2, ts, eps2);
      return tf.add<tf.Tensor4D>(tf.mul(1 - lambda, a), tf.mul(lambda, b));
    });
  }
}
