/**
 * DDPM: Sample as a job: a checkpoint's weights → n images (DDPM or DDIM), with the trajectory's frames as PNG grids
 * while it runs and, if asked, the trajectory strips at the end (paper Fig. 6: x_t and x̂0, rows = samples).
 */
import type { SampleOptions } from '../protocol.ts';
import type { CheckpointMeta } from '../checkpoint/checkpoint.ts';
import { encodeGrid } from '../image/png.ts';
import { gridEncoder, singlePngs } from './editInputs.ts';
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

/** What a job that samples a checkpoint (sample, inpaint, img2img) returns. */
export interface CheckpointJobResult {
  /** All images in one grid of ⌈√n⌉ columns. */
  grid: Buffer;
  /** One PNG per image. */
  images: Buffer[];
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

export interface SampleCheckpointResult extends CheckpointJobResult {
  /** x_t and x̂0 at each recorded step, one row per sample, when `strips` was asked. */
  strips: { xt: Buffer; x0: Buffer } | null;
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

/**
 * A checkpoint's classes for a job of n images (classLabels): what the sampler is conditioned with (the labels and
 * the guidance scale) and what the result reports (the labels and the class names, numbers when the checkpoint names
 * none); both empty for an unconditional model.
 */
export function checkpointClasses(meta: CheckpointMeta, choice: SampleOptions['class'], n: number, guidance: number) {
  const k = meta.model.numClasses ?? 0;
  const labels = classLabels(k, choice, n);
  return {
    conditioning: labels ? { labels, guidance } : {},
    report: labels ? { labels, classes: meta.classes ?? Array.from({ length: k }, (_, i) => String(i)) } : {},
  };
}

export async function sampleCheckpoint(o: SampleCheckpointOptions): Promise<SampleCheckpointResult> {
  const w = loadWeights(o.checkpoint, o.ema);
  const c = w.meta.model;
  const dims = { height: c.imageSize, width: c.imageSize, channels: c.channels };
  const grid = gridEncoder(o.n, c);
  const t0 = Date.now();
  try {
    const classes = checkpointClasses(w.meta, o.class, o.n, o.guidance);
    const r = await sampleImages(w.params, c, w.meta.schedule, {
      n: o.n,
      sampler: o.sampler,
      steps: o.steps,
      spacing: o.spacing,
      eta: o.eta,
      ...(w.meta.sampling ?? {}),
      seed: o.seed,
      ...classes.conditioning,
      frames: o.frames,
      keepFrames: o.strips === true,
      workers: o.workers,
      onWarning: o.onWarning,
      signal: o.signal,
      onStep: (s) => o.onStep?.({ index: s.index, total: s.total, t: s.t }),
      onFrame: async (f) => {
        if (!o.onFrame) return;
        const [xt, x0] = await Promise.all([grid(f.xt), grid(f.predX0)]);
        await o.onFrame({ index: f.index, t: f.t, xt, x0 });
      },
    });
    const strip = (pick: 'xt' | 'predX0') =>
      encodeGrid(
        { data: trajectoryBatch(r.frames, r.shape, pick), n: o.n * r.frames.length, ...dims },
        r.frames.length,
      );
    return {
      grid: await grid(r.images),
      images: await singlePngs(r.images, o.n, c),
      strips: o.strips && r.frames.length > 0 ? { xt: await strip('xt'), x0: await strip('predX0') } : null,
      imageSize: c.imageSize,
      channels: c.channels,
      step: w.meta.step,
      weights: w.which,
      ...classes.report,
      threads: r.threads,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    disposeWeights(w);
  }
}
