/**
 * Inpainting with an unconditionally trained DDPM: RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising
 * Diffusion Probabilistic Models", CVPR).
 *
 * Algorithm 1 of the paper: at every reverse step the known pixels are taken from the input image diffused to the
 * level reached, x_{t−1}^known ~ q(x_{t−1} | x_0) = N(√ᾱ_{t−1}·x_0, (1 − ᾱ_{t−1})·I) (eq. 8), the unknown ones from the
 * model, x_{t−1}^unknown ~ p_θ(x_{t−1} | x_t) (eq. 9), and the two are joined through the mask,
 * x_{t−1} = m ⊙ x^known + (1 − m) ⊙ x^unknown (eq. 10, m = 1 on known pixels). Because the known part is sampled
 * without regard to what the model generated, the two halves disagree at their border; "resampling" (§4.2) diffuses
 * x_{t−1} back to x_t with q(x_t | x_{t−1}) = N(√(1−β_t)·x_{t−1}, β_t·I) (eq. 11) and denoises again, r times, so that
 * the model harmonises the known part into the generated one. The jumps (§4.2, Fig. 9–10; the authors' code
 * get_schedule_jump, which diffusers' RePaintScheduler follows) go j steps back up at once, every j steps, r − 1 times.
 *
 * We run it on S timesteps of the schedule (respacing, as the authors do with 250 of 1000): a reverse step between
 * grid points is the DDPM posterior on the sub-sequence (DDIM with η = 1, Song et al. 2021 eq. 16, which for S = T is
 * Algorithm 2 with σ_t² = β̃_t), and a jump between grid points is q(x_{t'} | x_t) with ᾱ_{t'}/ᾱ_t in place of 1 − β.
 * Our mask is the user's: 1 = regenerate (white in a mask image), so m = 1 − mask.
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './diffusion.ts';
import { Rng } from './rng.ts';
import { guidedEps, type EpsModel } from './sampler.ts';
import { ddimTimesteps, type DdimSpacing } from './schedule.ts';

/**
 * RePaint's time schedule over grid positions S−1 … 0 (the authors' get_schedule_jump with t_T = S): positions in the
 * order visited, starting at S−1 (x_T ~ N(0, I)) and ending with −1 (x_0). A step down is a reverse (denoising) step,
 * a step up a forward (re-noising) one. From every position p = 0, j, 2j, … below S − j, reached going down, the walk
 * jumps j positions back up and comes down again, r − 1 times. Its length is S + 1 + 2·j·(r − 1)·⌈(S − j)/j⌉
 * (no jump point when j ≥ S); r = 1 is plain replacement without resampling.
 */
export function repaintSchedule(steps: number, jumpLength: number, resample: number): number[] {
  for (const [name, v] of [
    ['steps', steps],
    ['jump length', jumpLength],
    ['resampling', resample],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`RePaint ${name} must be a positive integer, got ${v}`);
  const jumps = new Map<number, number>();
  for (let p = 0; p < steps - jumpLength; p += jumpLength) jumps.set(p, resample - 1);
  const out = [steps - 1];
  let p = steps - 1;
  while (p >= 1) {
    p -= 1;
    out.push(p);
    const left = jumps.get(p) ?? 0;
    if (left > 0) {
      jumps.set(p, left - 1);
      for (let k = 0; k < jumpLength; k++) out.push(++p);
    }
  }
  out.push(-1);
  return out;
}

/** The number of reverse steps (model evaluations) of a schedule: what a run costs. */
export function reverseSteps(schedule: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < schedule.length; i++) if (schedule[i] < schedule[i - 1]) n++;
  return n;
}

export interface RepaintOptions {
  /** S: timesteps of the schedule used (1..T; T = the paper's full chain). */
  steps: number;
  /** j: how far each jump goes back up (the paper: 10). */
  jumpLength: number;
  /** r: how many times each jump point is passed (the paper: 10; 1 = no resampling). */
  resample: number;
  /** How the S timesteps spread over 0..T−1 (schedule.ts; default 'trailing', which starts at T−1). */
  spacing?: DdimSpacing;
  /** Clip x̂_0 to [−1, 1] (default true). */
  clip?: boolean;
  seed: number;
  /** A conditional model's class per image and the classifier-free guidance scale (as in sampler.ts). */
  labels?: readonly number[];
  guidance?: number;
  signal?: AbortSignal;
  /**
   * After every transition of the schedule, up (re-noising) or down (denoising). On a reverse step that
   * `wantTensors(reverseIndex, reverseTotal)` asks for, `xt` (the joined x at the level reached) and `predX0` (the
   * model's x̂_0 with the known pixels put back: what the result would be) are given, valid until the promise settles.
   */
  onStep?: (info: RepaintStepInfo) => void | Promise<void>;
  wantTensors?: (reverseIndex: number, reverseTotal: number) => boolean;
}

export interface RepaintStepInfo {
  /** 0-based index of the transition, and how many there are. */
  index: number;
  total: number;
  /** Reverse steps taken so far (after this one), and how many there are. */
  reverse: number;
  reverseTotal: number;
  direction: 'down' | 'up';
  /** The timestep left and the one reached (−1: x_0). */
  t: number;
  tNext: number;
  xt?: tf.Tensor4D;
  predX0?: tf.Tensor4D;
}

function abortError(): Error {
  const e = new Error('inpainting was cancelled');
  e.name = 'AbortError';
  return e;
}

/**
 * Inpaints `image` (NHWC in [−1, 1], batch 1 or n) where `mask` is 1 (regenerate) and keeps it where the mask is 0;
 * `mask` is [1 or n, H, W, 1 or C] of 0 and 1. Returns n results (the caller owns them); the inputs are not disposed.
 * The known pixels of the result are the input's exactly: the last step joins x̂_0 with x_0 itself (ᾱ_{−1} = 1).
 */
export async function repaint(
  model: EpsModel,
  diffusion: GaussianDiffusion,
  image: tf.Tensor4D,
  mask: tf.Tensor4D,
  n: number,
  opts: RepaintOptions,
): Promise<tf.Tensor4D> {
  const [, h, w, c] = image.shape;
  if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
  if (image.shape[0] !== 1 && image.shape[0] !== n) throw new Error(`image batch must be 1 or ${n}`);
  if (mask.shape[1] !== h || mask.shape[2] !== w || (mask.shape[3] !== 1 && mask.shape[3] !== c))
    throw new Error(`mask of shape [${mask.shape}] does not fit images of ${h}×${w}×${c}`);
  if (mask.shape[0] !== 1 && mask.shape[0] !== n) throw new Error(`mask batch must be 1 or ${n}`);
  const shape: [number, number, number, number] = [n, h, w, c];
  const positions = repaintSchedule(opts.steps, opts.jumpLength, opts.resample);
  // Ascending timesteps of the grid: position p is timestep grid[p].
  const grid = ddimTimesteps(diffusion.T, opts.steps, opts.spacing ?? 'trailing')
    .slice()
    .reverse();
  const ac = diffusion.schedule.f64.alphas_cumprod;
  const abar = (p: number) => (p < 0 ? 1 : ac[grid[p]]);
  const total = positions.length - 1;
  const reverseTotal = reverseSteps(positions);
  const clip = opts.clip ?? true;
  const rng = new Rng(opts.seed);
  const [x0, regen, keep] = tf.tidy(() => {
    const m = tf.cast(tf.greater(mask, 0.5), 'float32');
    return [
      tf.tile(image, [n / image.shape[0], 1, 1, 1]) as tf.Tensor4D,
      tf.tile(m, [n / mask.shape[0], 1, 1, 1]) as tf.Tensor4D,
      tf.tile(tf.sub(1, m), [n / mask.shape[0], 1, 1, 1]) as tf.Tensor4D,
    ];
  });
  const join = (known: tf.Tensor4D, unknown: tf.Tensor4D) =>
    tf.add<tf.Tensor4D>(tf.mul(keep, known), tf.mul(regen, unknown));
  const normal = (seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed) as tf.Tensor4D;
  let x = normal(rng.seed());
  let reverse = 0;
  try {
    for (let i = 0; i < total; i++) {
      if (opts.signal?.aborted) throw abortError();
      const p = positions[i];
      const q = positions[i + 1];
      const t = grid[p];
      const tNext = q < 0 ? -1 : grid[q];
      if (q > p) {
        // Resampling (eq. 11 over the jump): x_{t'} = √(ᾱ_{t'}/ᾱ_t)·x_t + √(1 − ᾱ_{t'}/ᾱ_t)·z.
        const ratio = abar(q) / abar(p);
        const seed = rng.seed();
        const next = tf.tidy(() =>
          tf.add<tf.Tensor4D>(tf.mul(Math.sqrt(ratio), x), tf.mul(Math.sqrt(1 - ratio), normal(seed))),
        );
        x.dispose();
        x = next;
        await opts.onStep?.({ index: i, total, reverse, reverseTotal, direction: 'up', t, tNext });
        continue;
      }
      const tb = new Array<number>(n).fill(t);
      const zSeed = rng.seed();
      const knownSeed = rng.seed();
      const eps = await guidedEps(model, x, tb, opts.labels, opts.guidance);
      let next: tf.Tensor4D;
      let shown: tf.Tensor4D;
      try {
        [next, shown] = tf.tidy(() => {
          // Unknown pixels: p_θ(x_{t−1} | x_t) (eq. 9), the DDPM posterior on the grid (η = 1).
          const r = diffusion.ddimStep(x, tb, new Array<number>(n).fill(tNext), eps, normal(zSeed), { eta: 1, clip });
          // Known pixels: q(x_{t−1} | x_0) (eq. 8); x_0 itself after the last step.
          const known = tNext < 0 ? x0 : diffusion.qSample(x0, new Array<number>(n).fill(tNext), normal(knownSeed));
          return [join(known, r.xPrev), join(x0, r.predX0)];
        });
      } finally {
        eps.dispose();
      }
      x.dispose();
      x = next;
      reverse++;
      try {
        if (opts.onStep) {
          const want = opts.wantTensors?.(reverse - 1, reverseTotal) ?? false;
          await opts.onStep({
            index: i,
            total,
            reverse,
            reverseTotal,
            direction: 'down',
            t,
            tNext,
            ...(want ? { xt: x, predX0: shown } : {}),
          });
        }
        // As in runSampler: let cancellation and other requests in between steps; fail on a device error.
        await new Promise<void>((r) => setImmediate(r));
        model.checkHealth?.();
      } finally {
        shown.dispose();
      }
    }
    if (opts.signal?.aborted) throw abortError();
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    tf.dispose([x0, regen, keep]);
  }
}
