/**
 * What the editing jobs (inpaint.ts, img2img.ts) share: the input image and mask converted to the checkpoint's size
 * and channels, the frames streamed as grids, the run on the sampling threads (runEdit) and the result's PNGs.
 */
import type * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { GaussianDiffusion } from '../ddpm/diffusion.ts';
import type { EpsModel } from '../ddpm/sampler.ts';
import { makeSchedule } from '../ddpm/schedule.ts';
import type { EditJobResult } from './inpaint.ts';
import { withSamplingThreads, type SamplingThreadOptions } from './sample.ts';
import type { LoadedWeights } from './weights.ts';
import { encodeGrid, loadImage } from '../image/png.ts';
import { BadInputError, requireFile } from './errors.ts';

export interface ModelShape {
  imageSize: number;
  channels: number;
}

/** The image a request names, as the model sees it (resized to cover, centre-cropped, its channels): [−1, 1]. */
export async function loadInput(file: string, m: ModelShape): Promise<Float32Array> {
  requireFile(file, 'image');
  return loadImage(file, m.imageSize, m.channels as 1 | 3).catch((e: Error) => {
    throw new BadInputError(`${file}: not a readable image (${e.message})`);
  });
}

const DATA_URL = /^data:image\/[a-z+.-]+;base64,/i;

/** Width / height of an image file or buffer (undefined when it cannot be read: the loader then says why). */
async function aspect(input: string | Buffer): Promise<number | undefined> {
  const m = await sharp(input)
    .metadata()
    .catch(() => undefined);
  return m?.width && m.height ? m.width / m.height : undefined;
}

/**
 * The mask a request gives (a file, or a `data:image/…;base64,` URL), converted like the image (so that a mask drawn
 * over the image at its own size lines up), grey-scale, and thresholded at mid-grey: 1 = regenerate (white), 0 = keep.
 * A mask of another shape than the image is used all the same (it is cropped the same way) with a warning; a mask
 * that regenerates nothing is refused.
 */
export async function loadMask(
  source: string,
  image: string,
  m: ModelShape,
  onWarning?: (message: string) => void,
): Promise<Float32Array> {
  const inline = DATA_URL.test(source);
  const input = inline ? Buffer.from(source.replace(DATA_URL, ''), 'base64') : source;
  if (!inline) requireFile(source, 'mask');
  const what = inline ? 'the mask' : source;
  const grey = await loadImage(input, m.imageSize, 1).catch((e: Error) => {
    throw new BadInputError(`${what}: not a readable image (${e.message})`);
  });
  const [a, b] = await Promise.all([aspect(input), aspect(image)]);
  if (a !== undefined && b !== undefined && Math.abs(a / b - 1) > 0.02)
    onWarning?.(
      `the mask's aspect ratio (${a.toFixed(2)}) differs from the image's (${b.toFixed(2)}): both are centre-cropped to a square, so they may not line up`,
    );
  const mask = grey.map((v) => (v > 0 ? 1 : 0));
  if (!mask.some((v) => v === 1))
    throw new BadInputError(`${what} is black everywhere: nothing to inpaint (white marks what to regenerate)`);
  return mask;
}

/** n images of the model's shape as PNG grids of ⌈√n⌉ columns (the layout of ddpm/sample). */
export function gridEncoder(n: number, m: ModelShape): (data: Float32Array) => Promise<Buffer> {
  const dims = { height: m.imageSize, width: m.imageSize, channels: m.channels };
  return (data) => encodeGrid({ data, n, ...dims }, Math.ceil(Math.sqrt(n)));
}

/**
 * A frame of an editing job: when the sampler kept a step's tensors (a wanted frame), x_t and x̂0 as grids to
 * onFrame, as frame `index`.
 */
export async function emitFrame(
  grid: (data: Float32Array) => Promise<Buffer>,
  index: number,
  s: { t: number; xt?: tf.Tensor; predX0?: tf.Tensor },
  onFrame: ((frame: { index: number; t: number; xt: Buffer; x0: Buffer }) => void | Promise<void>) | undefined,
): Promise<void> {
  if (!s.xt || !s.predX0 || !onFrame) return;
  const [xt, x0] = await Promise.all([s.xt.data(), s.predX0.data()]);
  const [a, b] = await Promise.all([grid(xt as Float32Array), grid(x0 as Float32Array)]);
  await onFrame({ index, t: s.t, xt: a, x0: b });
}

/** One PNG per image. */
export function singlePngs(data: Float32Array, n: number, m: ModelShape): Promise<Buffer[]> {
  const dims = { height: m.imageSize, width: m.imageSize, channels: m.channels };
  const per = m.imageSize * m.imageSize * m.channels;
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      encodeGrid({ data: data.subarray(i * per, (i + 1) * per), n: 1, ...dims }, 1, 0),
    ),
  );
}

/** A 0/1 mask as a black-and-white PNG of the model's size (white = regenerated). */
export function maskPng(mask: Float32Array, size: number): Promise<Buffer> {
  return encodeGrid({ data: mask.map((v) => v * 2 - 1), n: 1, height: size, width: size, channels: 1 }, 1, 0);
}

/**
 * The rest of an editing job once its inputs are read: `edit` (SDEdit, RePaint) run with the model on its sampling
 * threads (given the threads, the diffusion and the grid encoder for its frames), then the result: the n images, the
 * input as the model saw it, the mask as used (inpainting), and what every sampling job reports.
 */
export async function runEdit(
  w: LoadedWeights,
  o: SamplingThreadOptions & { n: number },
  inputs: { input: Float32Array; mask?: Float32Array },
  info: { modelSteps: number; report: Pick<EditJobResult, 'labels' | 'classes'> },
  edit: (
    eps: EpsModel,
    threads: number,
    diffusion: GaussianDiffusion,
    grid: (data: Float32Array) => Promise<Buffer>,
  ) => Promise<tf.Tensor>,
): Promise<EditJobResult> {
  const c = w.meta.model;
  const grid = gridEncoder(o.n, c);
  const t0 = Date.now();
  let threads = 1;
  const out = await withSamplingThreads(
    w.params,
    c,
    w.meta.schedule,
    o.n,
    { workers: o.workers, onWarning: o.onWarning },
    (eps, n) => {
      threads = n;
      return edit(eps, n, new GaussianDiffusion(makeSchedule(w.meta.schedule)), grid);
    },
  );
  try {
    const data = (await out.data()) as Float32Array;
    return {
      grid: await grid(data),
      images: await singlePngs(data, o.n, c),
      input: (await singlePngs(inputs.input, 1, c))[0],
      ...(inputs.mask ? { mask: await maskPng(inputs.mask, c.imageSize) } : {}),
      imageSize: c.imageSize,
      channels: c.channels,
      modelSteps: info.modelSteps,
      step: w.meta.step,
      weights: w.which,
      ...info.report,
      threads,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    out.dispose();
  }
}
