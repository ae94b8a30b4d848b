/**
 * Sampling loops: ancestral DDPM sampling (Algorithm 2, T steps) and DDIM (Song et al. 2021) on a sub-sequence of
 * timesteps, from pure noise or from a given x_t (used by interpolation, which denoises from its chosen t).
 *
 * A per-step callback receives the step index, t, and (for the steps it asks for) x_t and x̂_0, so that callers
 * can draw trajectories (paper Fig. 6) while sampling runs. Cancellation (AbortSignal) is checked between
 * denoising steps; on cancel every tensor is released before the AbortError propagates.
 */
import * as tf from '@tensorflow/tfjs';
import { ddimTimesteps, type DdimSpacing } from './schedule.ts';
import { NULL_CLASS } from './unet.ts';
import type { GaussianDiffusion, VarianceType } from './diffusion.ts';
import { Rng } from './rng.ts';

/**
 * ε_θ(x_t, t) in inference mode. It may answer asynchronously (sidecar/parallel/workerPool.ts spreads a batch over
 * threads), so the sampler calls it outside tf.tidy: it must release its own intermediates (unet.ts's inferenceEps
 * does). The sampler owns the returned tensor and disposes it after the step.
 */
export interface EpsModel {
  /** `labels`: a conditional model's class per image (NULL_CLASS for none; all none when absent). */
  (x: tf.Tensor4D, t: readonly number[], labels?: readonly number[]): tf.Tensor4D | Promise<tf.Tensor4D>;
  /**
   * Throws if the device computing the model has reported an error since, which makes every result after it
   * garbage (a GPU skips a command that failed; sidecar/backend.ts's assertBackendHealthy). The sampler calls it
   * after every step, so that a run fails instead of returning such images.
   */
  checkHealth?: () => void;
}

export type SamplerKind = 'ddpm' | 'ddim';

export interface SamplerOptions {
  sampler: SamplerKind;
  /** DDIM: number of steps (default 50). DDPM always uses every timestep. */
  steps?: number;
  /** DDIM: how the steps are spread over 0..T−1 (schedule.ts; default 'leading', the DDIM paper's). */
  spacing?: DdimSpacing;
  /**
   * A conditional model's class per image (NULL_CLASS: none). With `guidance` w > 0 each step takes classifier-free
   * guidance (Ho & Salimans 2022): ε = (1 + w)·ε(x, c) − w·ε(x, ∅), both in one pass of twice the batch.
   */
  labels?: readonly number[];
  guidance?: number;
  /** DDIM: η (0 = deterministic). */
  eta?: number;
  /** DDPM: σ_t² = β_t (fixedlarge, default) or β̃_t (fixedsmall). */
  varianceType?: VarianceType;
  /** Clip x̂_0 to [−1, 1] (default true). */
  clip?: boolean;
  /** Seed of the sampling noise (x_T and every z). */
  seed: number;
  /**
   * Draw each step's z for this many images and repeat it over the batch, whose size must be a multiple of it
   * (interpolation: every λ of a strip gets the same noise, so that the strip varies only with λ). Default: the batch.
   */
  noiseBatch?: number;
  signal?: AbortSignal;
  /**
   * Called after each denoising step. `xt` (the new x) and `predX0` are given only when `wantTensors(index)`
   * says so; they are valid until the callback's promise settles (they are disposed afterwards).
   */
  onStep?: (info: StepInfo) => void | Promise<void>;
  wantTensors?: (index: number, total: number) => boolean;
}

export interface StepInfo {
  /** 0-based index of the step just taken. */
  index: number;
  /** Number of steps in this run. */
  total: number;
  /** The timestep that was denoised (x_t → x_prev). */
  t: number;
  /** The timestep reached (−1 after the last step: x_0). */
  tPrev: number;
  xt?: tf.Tensor4D;
  predX0?: tf.Tensor4D;
}

/**
 * The descending timesteps a run visits. A full run (no `startT`) uses T−1 … 0 for DDPM and the DDIM grid as is;
 * a run from an intermediate x_t (interpolation) starts at `startT` and continues on the grid below it.
 */
export function samplingTimesteps(
  T: number,
  opts: Pick<SamplerOptions, 'sampler' | 'steps' | 'spacing'>,
  startT?: number,
): number[] {
  if (startT !== undefined && (!Number.isInteger(startT) || startT < 0 || startT >= T)) {
    throw new Error(`start timestep must be in 0..${T - 1}, got ${startT}`);
  }
  const from = startT ?? T - 1;
  if (opts.sampler === 'ddpm') return Array.from({ length: from + 1 }, (_, i) => from - i);
  if (opts.sampler !== 'ddim') throw new Error(`unknown sampler '${String(opts.sampler)}' (ddpm or ddim)`);
  const grid = ddimTimesteps(T, opts.steps ?? 50, opts.spacing);
  return startT === undefined ? grid : [startT, ...grid.filter((g) => g < startT)];
}

/**
 * ε for one step: the model's, or with labels ε(x, c), and with guidance w > 0 the classifier-free combination
 * (1 + w)·ε(x, c) − w·ε(x, ∅) (Ho & Salimans 2022, eq. 6), the conditional and unconditional halves computed as one
 * batch. The caller owns the result.
 */
export async function guidedEps(
  model: EpsModel,
  x: tf.Tensor4D,
  t: readonly number[],
  labels: readonly number[] | undefined,
  guidance = 0,
): Promise<tf.Tensor4D> {
  if (!labels) return model(x, t);
  if (labels.length !== x.shape[0]) throw new Error(`batch of ${x.shape[0]} images but ${labels.length} class labels`);
  if (!(guidance >= 0 && Number.isFinite(guidance))) throw new Error(`guidance must be a number ≥ 0, got ${guidance}`);
  if (guidance === 0) return model(x, t, labels);
  const both = tf.concat([x, x], 0);
  let eps2: tf.Tensor4D;
  try {
    eps2 = await model(both, [...t, ...t], [...labels, ...labels.map(() => NULL_CLASS)]);
  } finally {
    both.dispose();
  }
  try {
    return tf.tidy(() => {
      const [cond, uncond] = tf.split(eps2, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
      return tf.sub<tf.Tensor4D>(tf.mul(cond, 1 + guidance), tf.mul(uncond, guidance));
    });
  } finally {
    eps2.dispose();
  }
}

function abortError(): Error {
  const e = new Error('sampling was cancelled');
  e.name = 'AbortError';
  return e;
}

/**
 * Runs the reverse process from `xStart` at `startT` (or from N(0, I) at T−1) down to x_0.
 * Returns x_0 (the caller owns it); `xStart` is not disposed.
 */
export async function runSampler(
  model: EpsModel,
  diffusion: GaussianDiffusion,
  shape: [number, number, number, number],
  opts: SamplerOptions,
  start?: { x: tf.Tensor4D; t: number },
): Promise<tf.Tensor4D> {
  const rng = new Rng(opts.seed);
  const clip = opts.clip ?? true;
  const varianceType = opts.varianceType ?? 'fixedlarge';
  const eta = opts.eta ?? 0;
  const ts = samplingTimesteps(diffusion.T, opts, start?.t);
  const noiseBatch = opts.noiseBatch ?? shape[0];
  if (!Number.isInteger(noiseBatch) || noiseBatch < 1 || shape[0] % noiseBatch !== 0)
    throw new Error(`noiseBatch must divide the batch of ${shape[0]}, got ${noiseBatch}`);
  const noiseShape: [number, number, number, number] = [noiseBatch, shape[1], shape[2], shape[3]];
  const noise = (seed: number): tf.Tensor4D => {
    const z = tf.randomNormal(noiseShape, 0, 1, 'float32', seed) as tf.Tensor4D;
    return noiseBatch === shape[0] ? z : tf.tile(z, [shape[0] / noiseBatch, 1, 1, 1]);
  };
  // Every step's noise comes from the seeded generator, in step order: the same seed gives the same samples.
  let x: tf.Tensor4D = start ? tf.clone(start.x) : (tf.randomNormal(shape, 0, 1, 'float32', rng.seed()) as tf.Tensor4D);
  try {
    for (let i = 0; i < ts.length; i++) {
      if (opts.signal?.aborted) throw abortError();
      const t = ts[i];
      const tPrev = i + 1 < ts.length ? ts[i + 1] : -1;
      const tb = new Array<number>(shape[0]).fill(t);
      const noiseSeed = rng.seed();
      const eps = await guidedEps(model, x, tb, opts.labels, opts.guidance);
      let xPrev: tf.Tensor4D;
      let predX0: tf.Tensor4D;
      try {
        [xPrev, predX0] = tf.tidy(() => {
          const r =
            opts.sampler === 'ddpm'
              ? diffusion.pSampleStep(x, tb, eps, noise(noiseSeed), { varianceType, clip })
              : diffusion.ddimStep(
                  x,
                  tb,
                  new Array<number>(shape[0]).fill(tPrev),
                  eps,
                  eta > 0 ? noise(noiseSeed) : null,
                  {
                    eta,
                    clip,
                  },
                );
          return [r.xPrev, r.predX0];
        });
      } finally {
        eps.dispose();
      }
      x.dispose();
      x = xPrev;
      try {
        if (opts.onStep) {
          const want = opts.wantTensors?.(i, ts.length) ?? false;
          await opts.onStep({ index: i, total: ts.length, t, tPrev, ...(want ? { xt: x, predX0 } : {}) });
        }
        // Yield to the event loop between steps (on CPU backends every await is a microtask) so that cancellation,
        // signals and other requests get a chance to run.
        await new Promise<void>((r) => setImmediate(r));
        model.checkHealth?.();
      } finally {
        predX0.dispose();
      }
    }
    if (opts.signal?.aborted) throw abortError();
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  }
}

/** λ per sampler run at most: a strip's images are denoised together, so its length sets the batch (and memory). */
export const INTERPOLATION_BATCH = 16;

/**
 * Interpolation in latent space (paper §4.3, Fig. 8): x_1, x_2 are diffused to t with their own noise, mixed as
 * (1−λ)·x_t(x_1) + λ·x_t(x_2), and the mixes are denoised from t down to 0, all λ together as one batch (in runs of
 * at most INTERPOLATION_BATCH). Returns one image batch per λ. The same seed gives the same noise for every λ, so
 * the strip varies only with λ, and a λ's image does not depend on the others in the strip.
 */
export async function interpolate(
  model: EpsModel,
  diffusion: GaussianDiffusion,
  x1: tf.Tensor4D,
  x2: tf.Tensor4D,
  t: number,
  lambdas: readonly number[],
  opts: Omit<SamplerOptions, 'onStep' | 'wantTensors' | 'noiseBatch'> & {
    /** After each denoising step of each run: `step` of `total` steps over the whole strip (0-based). */
    onProgress?: (step: number, total: number) => void | Promise<void>;
    onLambda?: (index: number, image: tf.Tensor4D) => void | Promise<void>;
  },
): Promise<tf.Tensor4D[]> {
  if (x1.shape.join() !== x2.shape.join()) throw new Error(`images differ in shape: [${x1.shape}] vs [${x2.shape}]`);
  for (const l of lambdas) if (!(l >= 0 && l <= 1)) throw new Error(`interpolation λ must be in [0, 1], got ${l}`);
  const rng = new Rng(opts.seed);
  const eps1 = tf.randomNormal(x1.shape, 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const eps2 = tf.randomNormal(x2.shape, 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const denoiseSeed = rng.seed();
  const [b, h, w, c] = x1.shape;
  const runs = Math.ceil(lambdas.length / INTERPOLATION_BATCH);
  const perRun = samplingTimesteps(diffusion.T, opts, t).length;
  const out: tf.Tensor4D[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const group = lambdas.slice(r * INTERPOLATION_BATCH, (r + 1) * INTERPOLATION_BATCH);
      const xt = tf.tidy(() =>
        tf.concat(
          group.map((l) => diffusion.interpolateLatents(x1, x2, t, eps1, eps2, l)),
          0,
        ),
      );
      let images: tf.Tensor4D;
      try {
        images = await runSampler(
          model,
          diffusion,
          [group.length * b, h, w, c],
          {
            ...opts,
            seed: denoiseSeed,
            noiseBatch: b,
            onStep: (s) => opts.onProgress?.(r * perRun + s.index, runs * perRun),
          },
          { x: xt, t },
        );
      } finally {
        xt.dispose();
      }
      const parts = group.length === 1 ? [images] : (tf.split(images, group.length, 0) as tf.Tensor4D[]);
      if (group.length > 1) images.dispose();
      for (const p of parts) {
        out.push(p);
        await opts.onLambda?.(out.length - 1, p);
      }
    }
    return out;
  } catch (e) {
    tf.dispose(out);
    throw e;
  } finally {
    tf.dispose([eps1, eps2]);
  }
}
