/**
 * Interpolation in latent space (paper §4.3, Fig. 8) as a job: both images, converted to the model's size and
 * channels, are diffused to t with the same noise, their latents mixed for each λ, and all λ denoised from t together
 * as one batch. The strip holds input a, the interpolations and input b.
 */
import * as tf from '@tensorflow/tfjs';
import { GaussianDiffusion } from '../ddpm/diffusion.ts';
import { interpolate, INTERPOLATION_BATCH } from '../ddpm/sampler.ts';
import { makeSchedule } from '../ddpm/schedule.ts';
import { encodeGrid, loadImage } from '../image/png.ts';
import type { InterpolateOptions } from '../protocol.ts';
import { BadInputError, requireFile } from './errors.ts';
import { withSamplingThreads } from './sample.ts';
import { disposeWeights, loadWeights } from './weights.ts';

export interface InterpolateJobOptions extends Omit<InterpolateOptions, 'token'> {
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Once the model's threads are known, before the first step. */
  onStart?: (info: { threads: number }) => void;
  /** After each denoising step (0-based) of `total`. */
  onProgress?: (step: number, total: number) => void;
}

export interface InterpolateJobResult {
  /** One PNG per λ, in order. */
  images: Buffer[];
  /** The inputs as the model sees them. */
  inputs: [Buffer, Buffer];
  /** Input a, the interpolations, input b, in one row. */
  strip: Buffer;
  threads: number;
  seconds: number;
}

export async function interpolateImages(o: InterpolateJobOptions): Promise<InterpolateJobResult> {
  requireFile(o.imageA, 'image');
  requireFile(o.imageB, 'image');
  const w = loadWeights(o.checkpoint, o.ema);
  const c = w.meta.model;
  const tensors: tf.Tensor[] = [];
  try {
    if (o.t >= w.meta.schedule.T)
      throw new BadInputError(`t must be below the checkpoint's T = ${w.meta.schedule.T}, got ${o.t}`);
    const inputs = await Promise.all(
      [o.imageA, o.imageB].map((f) =>
        loadImage(f, c.imageSize, c.channels as 1 | 3).catch((e: Error) => {
          throw new BadInputError(`${f}: not a readable image (${e.message})`);
        }),
      ),
    );
    const shape: [number, number, number, number] = [1, c.imageSize, c.imageSize, c.channels];
    const [x1, x2] = inputs.map((d) => tf.tensor4d(d, shape));
    tensors.push(x1, x2);
    const t0 = Date.now();
    let threads = 1;
    const batch = Math.min(o.lambdas.length, INTERPOLATION_BATCH);
    const strip = await withSamplingThreads(
      w.params,
      c,
      w.meta.schedule,
      batch,
      { workers: o.workers, onWarning: o.onWarning },
      (eps, n) => {
        threads = n;
        o.onStart?.({ threads: n });
        return interpolate(eps, new GaussianDiffusion(makeSchedule(w.meta.schedule)), x1, x2, o.t, o.lambdas, {
          sampler: o.sampler,
          steps: o.steps,
          spacing: o.spacing,
          seed: o.seed,
          signal: o.signal,
          onProgress: o.onProgress,
        });
      },
    );
    tensors.push(...strip);
    const outs = await Promise.all(strip.map(async (s) => (await s.data()) as Float32Array));
    const dims = { height: c.imageSize, width: c.imageSize, channels: c.channels };
    const per = c.imageSize * c.imageSize * c.channels;
    const all = new Float32Array((outs.length + 2) * per);
    all.set(inputs[0], 0);
    outs.forEach((d, i) => all.set(d, (i + 1) * per));
    all.set(inputs[1], (outs.length + 1) * per);
    const one = (d: Float32Array) => encodeGrid({ data: d, n: 1, ...dims }, 1, 0);
    return {
      images: await Promise.all(outs.map(one)),
      inputs: [await one(inputs[0]), await one(inputs[1])],
      strip: await encodeGrid({ data: all, n: outs.length + 2, ...dims }, outs.length + 2),
      threads,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    tf.dispose(tensors);
    disposeWeights(w);
  }
}
