/**
 * CIFAR-10 binary batches (https://www.cs.toronto.edu/~kriz/cifar.html): files data_batch_1..5.bin (and
 * test_batch.bin) of 10,000 records, each 1 label byte + 3,072 pixel bytes (32×32 red plane, then green, then blue).
 * Given a folder, all data_batch_*.bin files in it are used; given a file, just that one.
 */
import fs from 'node:fs';
import { readRegularFile } from '../files.ts';
import { LIMITS } from '../limits.ts';
import path from 'node:path';
import type { Dataset, Split } from './dataset.ts';

const RECORD = 1 + 3 * 32 * 32;

export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** A folder's data_batch_*.bin files (split 'train') or its test_batch.bin ('test'); a file is taken as is for 'train'. */
function batchFiles(location: string, split: Split): string[] {
  if (!fs.statSync(location).isDirectory()) {
    if (split === 'test') throw new Error(`${location}: give the CIFAR-10 folder to evaluate on its test_batch.bin`);
    return [location];
  }
  const pattern = split === 'train' ? /^data_batch_\d+\.bin$/ : /^test_batch\.bin$/;
  const files = fs
    .readdirSync(location)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => path.join(location, f));
  if (files.length === 0)
    throw new Error(
      `${location}: no ${split === 'train' ? 'data_batch_*.bin files' : 'test_batch.bin file'} (the CIFAR-10 binary version)`,
    );
  return files;
}

export function cifarDataset(location: string, channels: number, split: Split = 'train'): Dataset {
  if (!fs.existsSync(location)) throw new Error(`${location}: no such file or folder`);
  const files = batchFiles(location, split);
  const buffers = files.map((f) => {
    const b = readRegularFile(f, LIMITS.inflatedBytes, 'the file');
    if (b.length === 0 || b.length % RECORD !== 0)
      throw new Error(
        `${f}: ${b.length} bytes is not a whole number of ${RECORD}-byte CIFAR-10 records (truncated or not CIFAR-10)`,
      );
    return b;
  });
  const counts = buffers.map((b) => b.length / RECORD);
  const n = counts.reduce((a, b) => a + b, 0);
  if (channels !== 1 && channels !== 3) throw new Error(`channels must be 1 or 3, got ${channels}`);
  const recordAt = (idx: number) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= n) throw new Error(`index ${idx} is out of range 0..${n - 1}`);
    let f = 0;
    let i = idx;
    while (i >= counts[f]) i -= counts[f++];
    return buffers[f].subarray(i * RECORD, (i + 1) * RECORD);
  };
  return {
    source: `cifar10:${location}`,
    size: n,
    imageSize: 32,
    channels,
    classes: CIFAR10_CLASSES,
    labels: (indices) => Int32Array.from(indices, (i) => recordAt(i)[0]),
    async read(indices) {
      const per = 32 * 32 * channels;
      const out = new Float32Array(indices.length * per);
      indices.forEach((idx, b) => {
        const rec = recordAt(idx).subarray(1);
        for (let p = 0; p < 1024; p++) {
          const r = rec[p];
          const g = rec[1024 + p];
          const bl = rec[2048 + p];
          if (channels === 3) {
            out[b * per + p * 3] = r / 127.5 - 1;
            out[b * per + p * 3 + 1] = g / 127.5 - 1;
            out[b * per + p * 3 + 2] = bl / 127.5 - 1;
          } else {
            out[b * per + p] = (0.299 * r + 0.587 * g + 0.114 * bl) / 127.5 - 1;
          }
        }
      });
      return out;
    },
  };
}
