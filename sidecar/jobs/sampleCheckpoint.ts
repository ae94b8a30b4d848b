/**
 * DDPM: Sample as a job: a checkpoint's weights → n images (DDPM or DDIM), with the trajectory's frames as PNG grids
 * while it runs and, if asked, the trajectory strips at the end (paper Fig. 6: x_t and x̂0, rows = samples).
 */
import type { SampleOptions } from '../protocol.ts';
import { encodeGrid } from '../image/png.ts';
import { sampleImages, trajectoryBatch } from './sample.ts';
import { NULL_CLASS } from '../ddpm/unet.ts';
import { BadInputError } from './errors.ts';
import { disposeWeights, loadWeights } from './weights.ts';

export interface SampleCheckpointOptions extends Omit<SampleOptions, 'token'> {
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Each denoising step: 0-based index, number of steps, t. */
  onStep?: (step: { index: number; total: number; t: number }) => void;
  /** Each of the `frames` recorded steps, as grids of x_t and of x̂0 (same layout as the final grid). */
  onFrame?: (frame: { index: number; t: number; xt: Buffer; x0: Buffer }) => void | Promise<void>;
  /** Also return the trajectory strips (needs frames ≥ 2). */
  strips?: boolean;
}

export interface SampleCheckpointResult {
  /** All images in one grid of ⌈√n⌉ columns. */
  grid: Buffer;
  /** One PNG per image. */
  images: Buffer[];
  /** x_t and x̂0 at each recorded step, one row per sample, when `strips` was asked. */
  strips: { xt: Buffer; x0: Buffer } | null;
  imageSize: number;
  channels: number;
  /** The checkpoint's step, and which weights were sampled. */
  step: number;
  weights: string;
  /** A conditional model's class of each image (NULL_CLASS: none) and its class names. */
  labels?: number[];
  classes?: string[];
  threads: number;
  seconds: number;
}

/**
 * The class of each of n images for a model of k classes (none for an unconditional model): one class, every class
 * in turn ('each'), or none ('any'). A class number for an unconditional model, or out of range, is an error.
 */
export function classLabels(k: number, choice: SampleOptions['class'], n: number): number[] | undefined {
  if (k === 0) {
    if (typeof choice === 'number')
      throw new BadInputError('this checkpoint is not class-conditional: it samples without a class');
    return undefined;
  }
  if (choice === 'any') return new Array<number>(n).fill(NULL_CLASS);
  if (choice === 'each') return Array.from({ length: n }, (_, i) => i % k);
  if (choice >= k) throw new BadInputError(`class ${choice} is out of range: this model has classes 0..${k - 1}`);
  return new Array<number>(n).fill(choice);
}

export async function sampleCheckpoint(o: SampleCheckpointOptions): Promise<SampleCheckpointResult> {
  const w = loadWeights(o.checkpoint, o.ema);
  const c = w.meta.model;
  const dims = { height: c.imageSize, width: c.imageSize, channels: c.channels };
  const cols = Math.ceil(Math.sqrt(o.n));
  const t0 = Date.now();
  try {
    const labels = classLabels(c.numClasses ?? 0, o.class, o.n);
    const r = await sampleImages(w.params, c, w.meta.schedule, {
      n: o.n,
      sampler: o.sampler,
      steps: o.steps,
      spacing: o.spacing,
      eta: o.eta,
      ...(w.meta.sampling ?? {}),
      seed: o.seed,
      ...(labels ? { labels, guidance: o.guidance } : {}),
      frames: o.frames,
      keepFrames: o.strips === true,
      workers: o.workers,
      onWarning: o.onWarning,
      signal: o.signal,
      onStep: (s) => o.onStep?.({ index: s.index, total: s.total, t: s.t }),
      onFrame: async (f) => {
        if (!o.onFrame) return;
        const [xt, x0] = await Promise.all([
          encodeGrid({ data: f.xt, n: o.n, ...dims }, cols),
          encodeGrid({ data: f.predX0, n: o.n, ...dims }, cols),
        ]);
        await o.onFrame({ index: f.index, t: f.t, xt, x0 });
      },
    });
    const per = c.imageSize * c.imageSize * c.channels;
    const images = await Promise.all(
      Array.from({ length: o.n }, (_, i) =>
        encodeGrid({ data: r.images.subarray(i * per, (i + 1) * per), n: 1, ...dims }, 1, 0),
      ),
    );
    const strip = (pick: 'xt' | 'predX0') =>
      encodeGrid(
        { data: trajectoryBatch(r.frames, r.shape, pick), n: o.n * r.frames.length, ...dims },
        r.frames.length,
      );
    return {
      grid: await encodeGrid({ data: r.images, n: o.n, ...dims }, cols),
      images,
      strips: o.strips && r.frames.length > 0 ? { xt: await strip('xt'), x0: await strip('predX0') } : null,
      imageSize: c.imageSize,
      channels: c.channels,
      step: w.meta.step,
      weights: w.which,
      ...(labels
        ? { labels, classes: w.meta.classes ?? Array.from({ length: c.numClasses ?? 0 }, (_, i) => String(i)) }
        : {}),
      threads: r.threads,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    disposeWeights(w);
  }
}
