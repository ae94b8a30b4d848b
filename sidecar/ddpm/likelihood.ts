/**
 * The variational bound on the negative log-likelihood (Ho et al. 2020, eq. 5), term by term and in bits per
 * dimension, as the authors' code computes it (diffusion_utils_2.py: normal_kl, _vb_terms_bpd, _prior_bpd,
 * calc_bpd_loop; utils.py: approx_standard_normal_cdf, discretized_gaussian_log_likelihood):
 *
 *   L = L_T + Σ_{t>1} L_{t−1} + L_0
 *   L_T     = KL(q(x_T|x_0) ‖ N(0, I))                         the prior term: no parameters, ≈ 0 for a good schedule
 *   L_{t−1} = KL(q(x_{t−1}|x_t, x_0) ‖ p_θ(x_{t−1}|x_t))       Gaussians (eqs. 6, 7 against eq. 11's mean and σ_t²)
 *   L_0     = −log p_θ(x_0|x_1)                                the discretized Gaussian decoder (§3.3, eq. 13)
 *
 * With 0-based timesteps as in the original code, term t = 0 is the decoder and t = 1 … T−1 are the KL terms. Each
 * term is the mean over an image's dimensions divided by ln 2; the sum over t plus the prior is that image's bound in
 * bits/dim. Beside each term the authors record the MSE of x̂_0 (clipped, as the bound uses it); we also record the
 * MSE of ε, the quantity L_simple trains (eq. 14).
 *
 * Numerics (float32 tensors, float64 constants): the variances are fixed per t, so the variance part of every KL,
 * ½(e^{lv1−lv2} − 1 − (lv1 − lv2)), is computed on the host in float64 (with expm1: near the end of the chain it is
 * ~1e-12, which float32 cannot resolve from its −1 + … + 1); the KL's mean part is taken between c1·x_0 and c1·x̂_0,
 * both posterior means without their common c2·x_t (the KL of two Gaussians does not change when both means move by
 * the same amount, and float32 would otherwise subtract two nearly equal sums); and the decoder takes each bin's
 * probability on the side of the Gaussian where the two CDF values do not cancel (Φ(b) − Φ(a) = Φ(−a) − Φ(−b), exact
 * for the tanh approximation, which is odd). The same formulas, with far less rounding.
 *
 * Every function returns new tensors and disposes its intermediates.
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion, VarianceType } from './diffusion.ts';
import { Rng } from './rng.ts';
import type { EpsModel } from './sampler.ts';
import type { Schedule } from './schedule.ts';

/** Per-row constants, shaped [B, 1, 1, 1], cast from float64 once. */
function column(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

/** The mean over every dimension but the batch (the authors' nn.meanflat): [B, …] → [B]. */
export function meanFlat(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(
    () =>
      tf.mean(
        x,
        x.shape.slice(1).map((_, i) => i + 1),
      ) as tf.Tensor1D,
  );
}

/**
 * KL(N(mean1, e^{logvar1}) ‖ N(mean2, e^{logvar2})) per element, in nats (normal_kl):
 * ½(−1 + lv2 − lv1 + e^{lv1−lv2} + (μ1 − μ2)²·e^{−lv2}). The log-variances are one per batch row (the model's are
 * fixed per t), given in float64; `mean2` 0 stands for a zero mean.
 */
export function normalKl(
  mean1: tf.Tensor4D,
  logvar1: ArrayLike<number>,
  mean2: tf.Tensor4D | 0,
  logvar2: ArrayLike<number>,
): tf.Tensor4D {
  const b = mean1.shape[0];
  if (logvar1.length !== b || logvar2.length !== b)
    throw new Error(`batch of ${b} but ${logvar1.length} and ${logvar2.length} log-variances`);
  const variancePart = new Float64Array(b);
  const meanWeight = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    const d = logvar1[i] - logvar2[i];
    variancePart[i] = 0.5 * (Math.expm1(d) - d);
    meanWeight[i] = 0.5 * Math.exp(-logvar2[i]);
  }
  return tf.tidy(() =>
    tf.add<tf.Tensor4D>(
      column(variancePart),
      tf.mul(column(meanWeight), mean2 === 0 ? tf.square(mean1) : tf.squaredDifference(mean1, mean2)),
    ),
  );
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * The authors' approximation of the standard normal CDF (approx_standard_normal_cdf):
 * Φ(x) ≈ ½(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed as the equal sigmoid(2·√(2/π)·(x + 0.044715·x³)), which keeps
 * its relative precision in the lower tail.
 */
export function approxStandardNormalCdf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sigmoid(tf.mul(2 * SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))));
}

/** The smallest probability the decoder's logs see (the authors' clamp). */
const MIN_PROB = 1e-12;

/**
 * log p(x) of data x ∈ {−1, −1 + 2/255, …, 1} under a Gaussian with `means` and log standard deviations `logScales`
 * (one per batch row), discretized into the 256 bins of width 2/255 around the pixel values, with the edge bins
 * reaching to ±∞ (discretized_gaussian_log_likelihood; paper eq. 13). Per element, in nats.
 */
export function discretizedGaussianLogLikelihood(
  x: tf.Tensor4D,
  means: tf.Tensor4D,
  logScales: ArrayLike<number>,
): tf.Tensor4D {
  if (logScales.length !== x.shape[0]) throw new Error(`batch of ${x.shape[0]} but ${logScales.length} log-scales`);
  const invStdv = Array.from(logScales, (s) => Math.exp(-s));
  return tf.tidy(() => {
    const centered = tf.sub(x, means);
    const inv = column(invStdv);
    const plusIn = tf.mul(inv, tf.add(centered, 1 / 255));
    const minIn = tf.mul(inv, tf.sub(centered, 1 / 255));
    const cdf = approxStandardNormalCdf;
    const logClamped = (p: tf.Tensor) => tf.log(tf.maximum(p, MIN_PROB));
    // Φ(plus) − Φ(min), taken in the tail the bin is in so that the difference does not cancel.
    const right = tf.greater(centered, 0);
    const cdfDelta = tf.where(right, tf.sub(cdf(tf.neg(minIn)), cdf(tf.neg(plusIn))), tf.sub(cdf(plusIn), cdf(minIn)));
    const logCdfPlus = logClamped(cdf(plusIn));
    const logOneMinusCdfMin = logClamped(cdf(tf.neg(minIn)));
    return tf.where(
      tf.less(x, -0.999),
      logCdfPlus,
      tf.where(tf.greater(x, 0.999), logOneMinusCdfMin, logClamped(cdfDelta)),
    ) as tf.Tensor4D;
  });
}

/** log σ_t² of p_θ(x_{t−1}|x_t) in float64 (orig p_mean_variance: fixedlarge takes log β̃_1 at t = 0). */
export function modelLogVariance(schedule: Schedule, t: readonly number[], varianceType: VarianceType): Float64Array {
  const src =
    varianceType === 'fixedlarge'
      ? schedule.f64.fixedlarge_log_variance
      : varianceType === 'fixedsmall'
        ? schedule.f64.posterior_log_variance_clipped
        : null;
  if (!src) throw new Error(`unknown variance type '${String(varianceType)}' (fixedlarge or fixedsmall)`);
  return Float64Array.from(t, (ti) => src[ti]);
}

export interface VbTermInputs {
  x0: tf.Tensor4D;
  /** q(x_t|x_0) drawn with `noise` (diffusion.qSample). */
  xt: tf.Tensor4D;
  t: readonly number[];
  noise: tf.Tensor4D;
  /** The model's ε_θ(x_t, t). */
  epsTheta: tf.Tensor4D;
}

export interface BoundOptions {
  /** σ_t² of the reverse process: the sampler's (fixedlarge: β_t, the paper's CIFAR-10 choice; fixedsmall: β̃_t). */
  varianceType: VarianceType;
  /** Clip x̂_0 to [−1, 1] before forming p_θ's mean (calc_bpd_loop's default, and the sampler's). */
  clip: boolean;
}

export interface VbTerms {
  /** Per image, in bits/dim: L_{t−1} = KL(q(x_{t−1}|x_t, x_0) ‖ p_θ(x_{t−1}|x_t)) for t > 0, L_0 = −log p_θ(x_0|x_1) for t = 0. */
  vb: tf.Tensor1D;
  /** Per image: mean (x̂_0 − x_0)². */
  x0Mse: tf.Tensor1D;
  /** Per image: mean (ε_θ − ε)². */
  epsMse: tf.Tensor1D;
}

/** The bound's term at each image's t (_vb_terms_bpd), and the MSE of x̂_0 and of ε. */
export function vbTermsBpd(diffusion: GaussianDiffusion, inp: VbTermInputs, o: BoundOptions): VbTerms {
  const { x0, xt, t, noise, epsTheta } = inp;
  const s = diffusion.schedule;
  const modelLogVar = modelLogVariance(s, t, o.varianceType);
  const trueLogVar = Float64Array.from(t, (ti) => s.f64.posterior_log_variance_clipped[ti]);
  const decoderRows = t.some((ti) => ti === 0);
  return tf.tidy(() => {
    const predX0 = diffusion.predictX0FromEps(xt, t, epsTheta, o.clip);
    const c1 = diffusion.coef('posterior_mean_coef1', t);
    // KL(q ‖ p_θ) with both means less their common c2·x_t (eq. 7: μ = c1·x_0 + c2·x_t).
    const kl = tf.div(
      meanFlat(normalKl(tf.mul<tf.Tensor4D>(c1, x0), trueLogVar, tf.mul<tf.Tensor4D>(c1, predX0), modelLogVar)),
      Math.LN2,
    );
    let vb: tf.Tensor1D = kl as tf.Tensor1D;
    if (decoderRows) {
      const modelMean = tf.add<tf.Tensor4D>(tf.mul(c1, predX0), tf.mul(diffusion.coef('posterior_mean_coef2', t), xt));
      const logScales = modelLogVar.map((lv) => 0.5 * lv);
      const nll = tf.div(tf.neg(meanFlat(discretizedGaussianLogLikelihood(x0, modelMean, logScales))), Math.LN2);
      vb = tf.where(
        tf.tensor1d(
          t.map((ti) => (ti === 0 ? 1 : 0)),
          'bool',
        ),
        nll,
        kl,
      ) as tf.Tensor1D;
    }
    return {
      vb,
      x0Mse: meanFlat(tf.squaredDifference(predX0, x0)),
      epsMse: meanFlat(tf.squaredDifference(epsTheta, noise)),
    };
  });
}

/** L_T in bits/dim per image (_prior_bpd): KL(q(x_T|x_0) = N(√ᾱ_T·x_0, 1 − ᾱ_T) ‖ N(0, I)). */
export function priorBpd(diffusion: GaussianDiffusion, x0: tf.Tensor4D): tf.Tensor1D {
  const s = diffusion.schedule;
  const last = s.T - 1;
  const b = x0.shape[0];
  const logVar = new Float64Array(b).fill(s.f64.log_one_minus_alphas_cumprod[last]);
  return tf.tidy(() => {
    const mean = tf.mul(s.f64.sqrt_alphas_cumprod[last], x0) as tf.Tensor4D;
    return tf.div(meanFlat(normalKl(mean, logVar, 0, new Float64Array(b))), Math.LN2) as tf.Tensor1D;
  });
}

const mix32 = (x: number): number => {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
};

/**
 * The noise ε of q(x_t|x_0) for image `image` at timestep t (standard normal, Box–Muller), a function of (seed,
 * image, t) alone: the same numbers whatever the batching, the threads or the other images evaluated. The generator's
 * state is three bijective hashes of the three numbers (distinct triples, distinct states) and a fourth of all three.
 */
export function qNoise(seed: number, image: number, t: number, out: Float32Array): Float32Array {
  const rng = new Rng([
    mix32(seed ^ 0x9e3779b9),
    mix32(image ^ 0x7f4a7c15),
    mix32(t ^ 0x94d049bb),
    (mix32((seed ^ Math.imul(image, 0x632be5ab) ^ Math.imul(t, 0x85157af5)) >>> 0) | 1) >>> 0,
  ]);
  for (let k = 0; k < 4; k++) rng.nextU32();
  for (let i = 0; i < out.length; i += 2) {
    const u1 = (rng.nextU32() + 1) / 4294967296; // (0, 1]
    const u2 = rng.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export interface BpdLoopOptions extends BoundOptions {
  /** Seed of the noise of q(x_t|x_0), drawn per image and t (qNoise). */
  seed: number;
  /** Image–timestep pairs per forward pass. */
  batch: number;
  /** Each image's id for its noise (default: its position); e.g. its index in the dataset. */
  ids?: readonly number[];
  /** A conditional model's class per image (the bound of p_θ(x_0|c)); absent: unconditional. */
  labels?: readonly number[];
  signal?: AbortSignal;
  /** After each pass: image–timestep pairs done (each one image's forward pass) of N·T. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

export interface BpdTerms {
  n: number;
  T: number;
  /** Per image, the bound in bits/dim: Σ_t terms + prior (calc_bpd_loop's total_bpd). */
  total: Float64Array;
  /** Per image, L_T in bits/dim. */
  prior: Float64Array;
  /** [N·T], row-major by image: term t of image i at i·T + t, in bits/dim (L_0 at t = 0, L_{t−1} above). */
  terms: Float64Array;
  /** [N·T], like `terms`: the MSE of x̂_0 and of ε. */
  x0Mse: Float64Array;
  epsMse: Float64Array;
}

function abortError(): Error {
  const e = new Error('evaluation was cancelled');
  e.name = 'AbortError';
  return e;
}

/**
 * The bound for each of N images, exact over all T timesteps (calc_bpd_loop): every (image, t) pair is one forward
 * pass of the model, taken `batch` pairs at a time, t from T−1 down to 0 and the images in order within each t.
 * `images` is NHWC in [−1, 1], flat.
 */
export async function calcBpdLoop(
  model: EpsModel,
  diffusion: GaussianDiffusion,
  images: Float32Array,
  shape: readonly [number, number, number, number],
  o: BpdLoopOptions,
): Promise<BpdTerms> {
  const [n, h, w, c] = shape;
  const per = h * w * c;
  const T = diffusion.T;
  if (!Number.isInteger(n) || n < 1) throw new Error(`need at least one image, got ${n}`);
  if (images.length !== n * per) throw new Error(`${images.length} values for ${n} images of ${per}`);
  if (!Number.isInteger(o.batch) || o.batch < 1) throw new Error(`batch must be a positive integer, got ${o.batch}`);
  if (o.ids && o.ids.length !== n) throw new Error(`${o.ids.length} image ids for ${n} images`);
  if (o.labels && o.labels.length !== n) throw new Error(`${o.labels.length} class labels for ${n} images`);
  const ids = o.ids ?? Array.from({ length: n }, (_, i) => i);
  const out: BpdTerms = {
    n,
    T,
    total: new Float64Array(n),
    prior: new Float64Array(n),
    terms: new Float64Array(n * T),
    x0Mse: new Float64Array(n * T),
    epsMse: new Float64Array(n * T),
  };
  const total = n * T;
  for (let start = 0; start < total; start += o.batch) {
    if (o.signal?.aborted) throw abortError();
    const b = Math.min(o.batch, total - start);
    const which = Array.from({ length: b }, (_, k) => start + k);
    const img = which.map((p) => p % n);
    const t = which.map((p) => T - 1 - Math.floor(p / n));
    const x0Host = new Float32Array(b * per);
    const noiseHost = new Float32Array(b * per);
    img.forEach((i, k) => {
      x0Host.set(images.subarray(i * per, (i + 1) * per), k * per);
      qNoise(o.seed, ids[i], t[k], noiseHost.subarray(k * per, (k + 1) * per));
    });
    const x0 = tf.tensor4d(x0Host, [b, h, w, c]);
    const noise = tf.tensor4d(noiseHost, [b, h, w, c]);
    const xt = diffusion.qSample(x0, t, noise);
    let values: Float32Array;
    try {
      const epsTheta = await (o.labels
        ? model(
            xt,
            t,
            img.map((i) => o.labels![i]),
          )
        : model(xt, t));
      try {
        const stacked = tf.tidy(() => {
          const r = vbTermsBpd(diffusion, { x0, xt, t, noise, epsTheta }, o);
          return tf.stack([r.vb, r.x0Mse, r.epsMse]);
        });
        values = (await stacked.data()) as Float32Array;
        stacked.dispose();
      } finally {
        epsTheta.dispose();
      }
    } finally {
      tf.dispose([x0, noise, xt]);
    }
    img.forEach((i, k) => {
      const at = i * T + t[k];
      out.terms[at] = values[k];
      out.x0Mse[at] = values[b + k];
      out.epsMse[at] = values[2 * b + k];
    });
    model.checkHealth?.();
    await o.onProgress?.(start + b, total);
    // Let cancellation and other requests in between passes (on CPU backends every await is a microtask).
    await new Promise<void>((r) => setImmediate(r));
  }
  if (o.signal?.aborted) throw abortError();
  const prior = tf.tidy(() => priorBpd(diffusion, tf.tensor4d(images, [n, h, w, c])));
  out.prior.set((await prior.data()) as Float32Array);
  prior.dispose();
  for (let i = 0; i < n; i++) {
    let sum = out.prior[i];
    for (let t = 0; t < T; t++) sum += out.terms[i * T + t];
    out.total[i] = sum;
  }
  return out;
}
