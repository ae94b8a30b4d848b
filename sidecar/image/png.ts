/** Image batches in [−1, 1] (NHWC) → PNG grids (pngjs). */
import { PNG } from 'pngjs';

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
 * background, and encodes it as an RGB PNG (grayscale images are replicated into the three channels).
 */
export function encodeGrid(batch: ImageBatch, cols: number, pad = 2): Buffer {
  const { data, n, height: h, width: w, channels: c } = batch;
  if (data.length !== n * h * w * c) throw new Error(`image data has ${data.length} values, expected ${n}×${h}×${w}×${c}`);
  if (c !== 1 && c !== 3) throw new Error(`images must have 1 or 3 channels, got ${c}`);
  const rows = Math.ceil(n / cols);
  const W = cols * w + (cols + 1) * pad;
  const H = rows * h + (rows + 1) * pad;
  const png = new PNG({ width: W, height: H, colorType: 2, inputHasAlpha: false });
  png.data.fill(0);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  for (let k = 0; k < n; k++) {
    const oy = pad + Math.floor(k / cols) * (h + pad);
    const ox = pad + (k % cols) * (w + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = ((k * h + y) * w + x) * c;
        const dst = ((oy + y) * W + ox + x) * 4;
        for (let ch = 0; ch < 3; ch++) png.data[dst + ch] = toByte(data[src + (c === 1 ? 0 : ch)]);
      }
    }
  }
  return PNG.sync.write(png, { colorType: 2 });
}

/** Decodes a PNG into [−1, 1] NHWC (n = 1) with the requested channel count. */
export function decodePng(buf: Buffer, channels: 1 | 3): ImageBatch {
  const png = PNG.sync.read(buf);
  const { width, height } = png;
  const out = new Float32Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    const a = png.data[i * 4 + 3] / 255;
    // Composite transparency over black, the background of the training data.
    const rgb = [0, 1, 2].map((ch) => png.data[i * 4 + ch] * a);
    if (channels === 1) out[i] = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 127.5 - 1;
    else for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = rgb[ch] / 127.5 - 1;
  }
  return { data: out, n: 1, height, width, channels };
}
