/**
 * IDX files, the MNIST format (http://yann.lecun.com/exdb/mnist/): big-endian magic [0, 0, type, ndim], ndim
 * uint32 sizes, then the values. Images are unsigned bytes, N×H×W. Gzipped files (.gz) are decompressed on open.
 * E.g. Fashion-MNIST from Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { Dataset } from './dataset.ts';

export function parseIdxImages(
  buf: Buffer,
  file: string,
): { n: number; height: number; width: number; pixels: Uint8Array } {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new Error(`${file}: the gzip stream is damaged (${(e as Error).message})`, { cause: e });
    }
  }
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

/** `imageSize`: at least the images' own size (smaller requests get the native size); larger sizes pad. */
export function idxDataset(file: string, imageSize = 0): Dataset {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  if (fs.statSync(file).isDirectory())
    throw new Error(`${file} is a folder; idx: takes an images file (e.g. train-images-idx3-ubyte.gz)`);
  const { n, height, width, pixels } = parseIdxImages(fs.readFileSync(file), file);
  const size = Math.max(imageSize, height, width);
  return {
    source: `idx:${file}`,
    size: n,
    imageSize: size,
    channels: 1,
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
