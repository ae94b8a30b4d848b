/** Image batches in [−1, 1] (NHWC) ↔ image files, with sharp (libvips): PNG grids out, any common format in. */
import sharp from 'sharp';
import { readRegularFile } from '../files.ts';
import { LIMITS } from '../limits.ts';

export interface ImageBatch {
  data: Float32Array;
  n: number;
  height: number;
  width: number;
  channels: number;
}

const toByte = (v: number): number => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));

/**
 * Lays images out in a grid (row-major: image i at row ⌊i/cols⌋, column i mod cols) separated by `pad` pixels of
 * background, and encodes it as PNG.
 */
export async function encodeGrid(batch: ImageBatch, cols: number, pad = 2): Promise<Buffer> {
  const { data, n, height: h, width: w, channels: c } = batch;
  if (data.length !== n * h * w * c)
    throw new Error(`image data has ${data.length} values, expected ${n}×${h}×${w}×${c}`);
  if (c !== 1 && c !== 3) throw new Error(`images must have 1 or 3 channels, got ${c}`);
  const rows = Math.ceil(n / cols);
  const W = cols * w + (cols + 1) * pad;
  const H = rows * h + (rows + 1) * pad;
  const raw = Buffer.alloc(W * H * c);
  for (let k = 0; k < n; k++) {
    const oy = pad + Math.floor(k / cols) * (h + pad);
    const ox = pad + (k % cols) * (w + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++)
          raw[((oy + y) * W + ox + x) * c + ch] = toByte(data[((k * h + y) * w + x) * c + ch]);
      }
    }
  }
  return sharp(raw, { raw: { width: W, height: H, channels: c as 1 | 3 } })
    .png()
    .toBuffer();
}

/**
 * Reads an image file (PNG, JPEG, WebP, …) as one image of size×size in [−1, 1]: resized to cover and centre-cropped,
 * transparency composited over black (the background of the training data), converted to the model's channels.
 */
export async function loadImage(input: string | Buffer, size: number, channels: 1 | 3): Promise<Float32Array> {
  // A path is read here, not by sharp: a named pipe must be refused, not waited on in libvips' thread.
  if (typeof input === 'string') input = readRegularFile(input, LIMITS.imageFileBytes, 'the image file');
  let img = sharp(input, { failOn: 'error' })
    .flatten({ background: { r: 0, g: 0, b: 0 } })
    .resize(size, size, { fit: 'cover', position: 'centre' });
  img = channels === 1 ? img.grayscale() : img.toColourspace('srgb');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || info.width !== size || info.height !== size) {
    throw new Error(`decoded ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×${channels}`);
  }
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] / 127.5 - 1;
  return out;
}
