/**
 * IDX files, the MNIST format (http://yann.lecun.com/exdb/mnist/): big-endian magic [0, 0, type, ndim], ndim
 * uint32 sizes, then the values. Images are unsigned bytes, N×H×W. Gzipped files (.gz) are decompressed on open.
 * E.g. Fashion-MNIST from Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { readRegularFile } from '../files.ts';
import { LIMITS } from '../limits.ts';
import { pickLabels, type Dataset, type Split } from './dataset.ts';

export function parseIdxImages(
  buf: Buffer,
  file: string,
  maxInflated: number = LIMITS.inflatedBytes,
): { n: number; height: number; width: number; pixels: Uint8Array } {
  buf = gunzipIfNeeded(buf, file, maxInflated);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${file}: not an IDX file (bad magic number)`);
  const type = buf[2];
  const ndim = buf[3];
  if (type !== 0x08)
    throw new Error(`${file}: IDX element type 0x${type.toString(16)} is not unsigned bytes (images are 0x08)`);
  if (ndim !== 3)
    throw new Error(
      `${file}: IDX file has ${ndim} dimensions; image files have 3 (N×H×W)${ndim === 1 ? ' — this looks like a labels file' : ''}`,
    );
  if (buf.length < 16) throw new Error(`${file}: IDX header is truncated`);
  const [n, height, width] = [buf.readUInt32BE(4), buf.readUInt32BE(8), buf.readUInt32BE(12)];
  const expected = 16 + n * height * width;
  if (buf.length < expected)
    throw new Error(
      `${file}: truncated: ${n} images of ${height}×${width} need ${expected} bytes, the file has ${buf.length}`,
    );
  if (n === 0 || height === 0 || width === 0) throw new Error(`${file}: the IDX file holds no images`);
  return { n, height, width, pixels: new Uint8Array(buf.buffer, buf.byteOffset + 16, n * height * width) };
}

/** Copies an h×w byte image into the centre of a size×size float image in [−1, 1] (background −1). */
export function placeCentered(
  src: Uint8Array,
  h: number,
  w: number,
  size: number,
  out: Float32Array,
  offset: number,
): void {
  const top = Math.floor((size - h) / 2);
  const left = Math.floor((size - w) / 2);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) out[offset + (y + top) * size + x + left] = src[y * w + x] / 127.5 - 1;
}

/**
 * The size an IDX file's header announces (16 + n·h·w for images, 8 + n for labels), from its first bytes; null when
 * they are not an IDX header (the parser then says what is wrong).
 */
function announcedSize(head: Buffer): number | null {
  if (head.length < 8 || head[0] !== 0 || head[1] !== 0 || head[2] !== 0x08) return null;
  if (head[3] === 1) return 8 + head.readUInt32BE(4);
  if (head[3] === 3 && head.length >= 16)
    return 16 + head.readUInt32BE(4) * head.readUInt32BE(8) * head.readUInt32BE(12);
  return null;
}

/**
 * Decompresses a gzipped file without trusting it: a small .gz can inflate to terabytes. The first bytes are inflated
 * alone to read the header; a header that announces more than `maxBytes` is refused before anything else is
 * inflated, and the rest inflates to at most the announced size (more is refused too), never past `maxBytes`.
 */
function gunzipIfNeeded(buf: Buffer, file: string, maxBytes: number = LIMITS.inflatedBytes): Buffer {
  if (buf.length < 2 || buf[0] !== 0x1f || buf[1] !== 0x8b) return buf;
  const tooLarge = (what: string) =>
    new Error(
      `${file}: ${what} is over the limit of ${maxBytes.toLocaleString('en-US')} bytes (a gzip bomb, or not a dataset)`,
    );
  try {
    // A truncated stream with a sync flush gives what it holds so far, without an error.
    const head = zlib.gunzipSync(buf.subarray(0, 4096), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const announced = announcedSize(head);
    if (announced !== null && announced > maxBytes)
      throw tooLarge(`the decompressed size its header announces (${announced.toLocaleString('en-US')} bytes)`);
    const cap = announced ?? maxBytes;
    try {
      return zlib.gunzipSync(buf, { maxOutputLength: cap });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') throw e;
      throw announced === null
        ? tooLarge('the decompressed data')
        : new Error(
            `${file}: the decompressed data is longer than the ${announced.toLocaleString('en-US')} bytes its header announces (a gzip bomb, or not a dataset)`,
          );
    }
  } catch (e) {
    if ((e as Error).message.startsWith(`${file}: `)) throw e;
    throw new Error(`${file}: the gzip stream is damaged (${(e as Error).message})`, { cause: e });
  }
}

/** A dataset file's bytes: a regular file (not a pipe) no larger than the inflation limit. */
const readDataFile = (file: string) => readRegularFile(file, LIMITS.inflatedBytes, 'the file');

/** An IDX labels file: magic [0, 0, 0x08, 1], the count, then one byte per image. */
export function parseIdxLabels(buf: Buffer, file: string): Uint8Array {
  buf = gunzipIfNeeded(buf, file);
  if (buf.length < 8 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || buf[3] !== 1)
    throw new Error(`${file}: not an IDX labels file (magic 0x00000801)`);
  const n = buf.readUInt32BE(4);
  if (buf.length < 8 + n)
    throw new Error(`${file}: truncated: ${n} labels need ${8 + n} bytes, the file has ${buf.length}`);
  return new Uint8Array(buf.buffer, buf.byteOffset + 8, n);
}

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** The MNIST naming: train-images-idx3-ubyte(.gz) beside train-labels-idx1-ubyte(.gz), t10k-… for the test set. */
export function idxSibling(file: string, what: 'labels' | 'test'): string {
  const dir = path.dirname(file);
  const base = path.basename(file);
  return path.join(
    dir,
    what === 'labels' ? base.replace('images-idx3', 'labels-idx1') : base.replace(/^train-/, 't10k-'),
  );
}

/**
 * `imageSize`: at least the images' own size (smaller requests get the native size); larger sizes pad. Labels come
 * from the labels file beside the images when there is one; the test split is the t10k- file beside them.
 */
export function idxDataset(file: string, imageSize = 0, split: Split = 'train'): Dataset {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  if (fs.statSync(file).isDirectory())
    throw new Error(`${file} is a folder; idx: takes an images file (e.g. train-images-idx3-ubyte.gz)`);
  if (split === 'test') {
    const test = idxSibling(file, 'test');
    if (test === file || !fs.existsSync(test)) throw new Error(`${file}: no held-out set beside it (expected ${test})`);
    return { ...idxDataset(test, imageSize), source: `idx:${file}` };
  }
  const { n, height, width, pixels } = parseIdxImages(readDataFile(file), file);
  const labelsFile = idxSibling(file, 'labels');
  let labels: Uint8Array | null = null;
  if (labelsFile !== file && fs.existsSync(labelsFile)) {
    labels = parseIdxLabels(readDataFile(labelsFile), labelsFile);
    if (labels.length !== n) throw new Error(`${labelsFile}: ${labels.length} labels for ${n} images in ${file}`);
  }
  const numClasses = labels ? Math.max(...labels) + 1 : 0;
  const classes =
    /fashion/i.test(file) && numClasses <= 10
      ? FASHION_MNIST_CLASSES
      : Array.from({ length: numClasses }, (_, i) => String(i));
  const size = Math.max(imageSize, height, width);
  return {
    source: `idx:${file}`,
    size: n,
    imageSize: size,
    channels: 1,
    ...(labels ? { classes, labels: (indices: readonly number[]) => pickLabels(labels, indices) } : {}),
    async read(indices) {
      const per = size * size;
      const out = new Float32Array(indices.length * per).fill(-1);
      indices.forEach((i, b) => {
        if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`index ${i} is out of range 0..${n - 1}`);
        placeCentered(pixels.subarray(i * height * width, (i + 1) * height * width), height, width, size, out, b * per);
      });
      return out;
    },
  };
}
