/**
 * Image-to-image with a trained DDPM: SDEdit (Meng et al. 2022, "SDEdit: Guided Image Synthesis and Editing with
 * Stochastic Differential Equations", ICLR), Algorithm 1 in its discrete DDPM form: the guide image x^g (a photo, or a
 * rough sketch) is diffused to an intermediate time t₀ with the forward process, x_{t₀} ~ q(x_{t₀} | x^g) =
 * N(√ᾱ_{t₀}·x^g, (1 − ᾱ_{t₀})·I) (Ho et al. 2020, eq. 4), and the reverse process runs from t₀ down to x_0 (with
 * Algorithm 2 or DDIM, sampler.ts). The strength t₀/T trades faithfulness to the guide (small) for realism (large):
 * §4 of the paper, Fig. 3.
 *
 * The ends are exact: strength 0 is t₀ = 0, no step, the guide itself; strength 1 is t₀ = T, where q(x_T | x_0) is
 * N(0, I) up to √ᾱ_T (Ho et al. §3.1: L_T is constant), so the run is the sampler's own from x_T ~ N(0, I), the same
 * images as runSampler for the same seed.
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './diffusion.ts';
import { Rng } from './rng.ts';
import { runSampler, samplingTimesteps, type EpsModel, type SamplerOptions } from './sampler.ts';

/**
 * t₀ in the paper's 1-based time for a strength in [0, 1]: round(strength·T), 0 for the guide itself, T for pure
 * noise. The sampler's 0-based timestep of x_{t₀} is t₀ − 1.
 */
export function sdeditStart(T: number, strength: number): number {
  if (!(strength >= 0 && strength <= 1)) throw new Error(`SDEdit strength must be in [0, 1], got ${strength}`);
  return Math.round(strength * T);
}

/** The timesteps an SDEdit run denoises, in order (empty at strength 0). */
export function sdeditTimesteps(
  T: number,
  strength: number,
  opts: Pick<SamplerOptions, 'sampler' | 'steps' | 'spacing'>,
): number[] {
  const t0 = sdeditStart(T, strength);
  if (t0 === 0) return [];
  return samplingTimesteps(T, opts, t0 === T ? undefined : t0 - 1);
}

/**
 * n edits of `guide` (NHWC in [−1, 1], batch 1 or n) at `strength`: each its own noise. Returns x_0 for each (the
 * caller owns it); `guide` is not disposed. Progress, frames and cancellation as in runSampler.
 */
export async function sdedit(
  model: EpsModel,
  diffusion: GaussianDiffusion,
  guide: tf.Tensor4D,
  n: number,
  strength: number,
  opts: SamplerOptions,
): Promise<tf.Tensor4D> {
  const [b, h, w, c] = guide.shape;
  if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
  if (b !== 1 && b !== n) throw new Error(`guide batch must be 1 or ${n}, got ${b}`);
  const shape: [number, number, number, number] = [n, h, w, c];
  const t0 = sdeditStart(diffusion.T, strength);
  if (t0 === 0) return tf.tidy(() => tf.tile(guide, [n / b, 1, 1, 1]) as tf.Tensor4D);
  if (t0 === diffusion.T) return runSampler(model, diffusion, shape, opts);
  const rng = new Rng(opts.seed);
  const noiseSeed = rng.seed();
  const start = t0 - 1;
  const xt = tf.tidy(() =>
    diffusion.qSample(
      tf.tile(guide, [n / b, 1, 1, 1]) as tf.Tensor4D,
      new Array<number>(n).fill(start),
      tf.randomNormal(shape, 0, 1, 'float32', noiseSeed) as tf.Tensor4D,
    ),
  );
  try {
    return await runSampler(model, diffusion, shape, { ...opts, seed: rng.seed() }, { x: xt, t: start });
  } finally {
    xt.dispose();
  }
}
