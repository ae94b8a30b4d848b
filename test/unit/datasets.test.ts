// Dataset loaders on fixtures generated here: IDX (plain and gzipped), CIFAR-10 binary batches, and folders of
// images with RGBA, grayscale, odd sizes, JPEG/WebP, corrupt and non-image files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { openDataset } from '../../sidecar/data/open.ts';
import { parseIdxImages } from '../../sidecar/data/idx.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-data-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function idxBytes(n: number, h: number, w: number): Buffer {
  const b = Buffer.alloc(16 + n * h * w);
  b.writeUInt32BE(0x00000803, 0);
  b.writeUInt32BE(n, 4);
  b.writeUInt32BE(h, 8);
  b.writeUInt32BE(w, 12);
  for (let i = 0; i < n * h * w; i++) b[16 + i] = (i * 37) % 256;
  return b;
}

test('IDX images, plain and gzipped; padding to a larger model; truncated and label files refused', async () => {
  const raw = idxBytes(5, 28, 28);
  fs.writeFileSync(path.join(tmp, 'imgs-idx3-ubyte'), raw);
  fs.writeFileSync(path.join(tmp, 'imgs-idx3-ubyte.gz'), zlib.gzipSync(raw));
  for (const f of ['imgs-idx3-ubyte', 'imgs-idx3-ubyte.gz']) {
    const d = await openDataset(`idx:${path.join(tmp, f)}`, { imageSize: 16, channels: 1 });
    assert.equal(d.size, 5);
    assert.equal(d.imageSize, 28, 'never smaller than the images');
    const x = await d.read([1]);
    assert.equal(x.length, 784);
    assert.equal(x[0], Math.fround(raw[16 + 784] / 127.5 - 1));
  }
  const padded = await openDataset(`idx:${path.join(tmp, 'imgs-idx3-ubyte')}`, { imageSize: 32, channels: 1 });
  const y = await padded.read([0]);
  assert.equal(y.length, 1024);
  assert.equal(y[0], -1);
  assert.equal(y[2 * 32 + 2], Math.fround(raw[16] / 127.5 - 1));
  assert.throws(
    () => parseIdxImages(raw.subarray(0, 500), 'cut'),
    /truncated: 5 images of 28×28 need 3936 bytes, the file has 500/,
  );
  const labels = Buffer.from([0, 0, 8, 1, 0, 0, 0, 2, 3, 4]);
  assert.throws(() => parseIdxImages(labels, 'labels'), /looks like a labels file/);
  assert.throws(() => parseIdxImages(Buffer.from('hello world, not idx'), 'txt'), /not an IDX file/);
  assert.throws(() => parseIdxImages(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'gz'), /gzip stream is damaged/);
  await assert.rejects(openDataset(`idx:${path.join(tmp, 'missing')}`, { imageSize: 28, channels: 1 }), /no such file/);
});

test('CIFAR-10 binary batches: planar RGB to NHWC, grayscale conversion, folder of batches, bad sizes', async () => {
  const dir = path.join(tmp, 'cifar');
  fs.mkdirSync(dir);
  const rec = (label: number, r: number, g: number, b: number) =>
    Buffer.concat([Buffer.from([label]), Buffer.alloc(1024, r), Buffer.alloc(1024, g), Buffer.alloc(1024, b)]);
  fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), Buffer.concat([rec(0, 255, 0, 0), rec(1, 0, 255, 0)]));
  fs.writeFileSync(path.join(dir, 'data_batch_2.bin'), rec(2, 0, 0, 255));
  fs.writeFileSync(path.join(dir, 'readme.txt'), 'ignored');
  const d = await openDataset(`cifar10:${dir}`, { imageSize: 32, channels: 3 });
  assert.equal(d.size, 3);
  assert.equal(d.imageSize, 32);
  const x = await d.read([2, 0]);
  assert.deepEqual(Array.from(x.slice(0, 3)), [-1, -1, 1], 'third record is blue');
  assert.deepEqual(Array.from(x.slice(3072, 3075)), [1, -1, -1], 'first record is red');
  const gray = await openDataset(`cifar10:${dir}`, { imageSize: 32, channels: 1 });
  assert.ok(Math.abs((await gray.read([1]))[0] - ((0.587 * 255) / 127.5 - 1)) < 1e-6);
  fs.writeFileSync(path.join(tmp, 'bad.bin'), Buffer.alloc(3000));
  await assert.rejects(
    openDataset(`cifar10:${path.join(tmp, 'bad.bin')}`, { imageSize: 32, channels: 3 }),
    /not a whole number of 3073-byte CIFAR-10 records/,
  );
  const empty = path.join(tmp, 'nocifar');
  fs.mkdirSync(empty);
  await assert.rejects(openDataset(`cifar10:${empty}`, { imageSize: 32, channels: 3 }), /no data_batch_\*\.bin files/);
});

test('a folder of images: recursive, RGBA/grayscale/odd sizes/JPEG/WebP converted; bad files skipped and counted', async () => {
  const dir = path.join(tmp, 'images');
  fs.mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
  const solid = (w: number, h: number, channels: 3 | 4, c: number[]) =>
    sharp({
      create: {
        width: w,
        height: h,
        channels,
        background: channels === 4 ? { r: c[0], g: c[1], b: c[2], alpha: c[3] / 255 } : { r: c[0], g: c[1], b: c[2] },
      },
    });
  await solid(40, 20, 3, [255, 0, 0]).png().toFile(path.join(dir, 'a-red-wide.png'));
  await solid(16, 16, 4, [0, 255, 0, 128]).png().toFile(path.join(dir, 'b-green-rgba.png'));
  await solid(9, 31, 3, [255, 255, 255])
    .grayscale()
    .png()
    .toFile(path.join(dir, 'sub', 'c-gray-odd.png'));
  await solid(24, 24, 3, [0, 0, 255])
    .jpeg()
    .toFile(path.join(dir, 'sub', 'd-blue.jpg'));
  await solid(20, 20, 3, [255, 255, 0])
    .webp({ lossless: true })
    .toFile(path.join(dir, 'sub', 'deeper', 'e-yellow.webp'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an image');
  fs.writeFileSync(path.join(dir, 'fake.png'), 'this is text with a .png name');
  // A valid header and half of the pixel data: opens, then fails to decode.
  const noise = Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7919) % 251));
  const noisy = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  fs.writeFileSync(path.join(dir, 'sub', 'truncated.png'), noisy.subarray(0, noisy.length >> 1));

  const d = await openDataset(`folder:${dir}`, { imageSize: 8, channels: 3 });
  assert.equal(
    d.size,
    6,
    `five good images and one whose header reads but whose data is cut; skipped: ${d.skipped?.examples.join('; ')}`,
  );
  assert.equal(d.imageSize, 8);
  assert.equal(d.channels, 3);
  const all = await d.read([0, 1, 2, 3, 4, 5]);
  assert.equal(all.length, 6 * 8 * 8 * 3);
  const px = (img: number, x = 4, y = 4) =>
    Array.from(all.slice(img * 192 + (y * 8 + x) * 3, img * 192 + (y * 8 + x) * 3 + 3)).map(
      (v) => Math.round(((v + 1) * 127.5) / 5) * 5,
    );
  assert.deepEqual(px(0), [255, 0, 0]);
  assert.deepEqual(px(1), [0, 130, 0], 'half-transparent green over black');
  const skipped = d.skipped!;
  assert.equal(skipped.count, 3, skipped.examples.join('; '));
  assert.ok(skipped.examples.some((e) => e.startsWith('notes.txt (not an image)')));
  assert.ok(skipped.examples.some((e) => e.startsWith('fake.png (unreadable')));
  assert.ok(skipped.examples.some((e) => e.includes('truncated.png (cannot be decoded')));

  const g = await openDataset(`folder:${dir}`, { imageSize: 8, channels: 1 });
  const gx = await g.read([2]);
  assert.equal(gx.length, 64);
  assert.ok(
    gx.every((v) => v > 0.99),
    'the white grayscale image, as one channel',
  );

  const emptyDir = path.join(tmp, 'empty');
  fs.mkdirSync(emptyDir);
  fs.writeFileSync(path.join(emptyDir, 'x.txt'), 'x');
  await assert.rejects(
    openDataset(`folder:${emptyDir}`, { imageSize: 8, channels: 3 }),
    /no readable images .* skipped 1 file\(s\), e\.g\. x\.txt \(not an image\)/,
  );
  await assert.rejects(
    openDataset(`folder:${path.join(tmp, 'nope')}`, { imageSize: 8, channels: 3 }),
    /no such folder/,
  );
  await assert.rejects(openDataset('folder:', { imageSize: 8, channels: 3 }), /needs a path/);
});

test('labels and held-out splits: IDX labels beside the images (Fashion-MNIST names), t10k test file, CIFAR-10, class folders', async () => {
  const dir = path.join(tmp, 'fashion');
  fs.mkdirSync(dir);
  const labelBytes = (labels: number[]) => {
    const b = Buffer.alloc(8 + labels.length);
    b.writeUInt32BE(0x00000801, 0);
    b.writeUInt32BE(labels.length, 4);
    labels.forEach((l, i) => (b[8 + i] = l));
    return b;
  };
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), zlib.gzipSync(idxBytes(4, 28, 28)));
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(labelBytes([9, 0, 3, 9])));
  fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), zlib.gzipSync(idxBytes(2, 28, 28)));
  const source = `idx:${path.join(dir, 'train-images-idx3-ubyte.gz')}`;
  const train = await openDataset(source, { imageSize: 28, channels: 1 });
  assert.deepEqual([...(train.labels?.([0, 1, 2, 3]) ?? [])], [9, 0, 3, 9]);
  assert.equal(train.classes?.[9], 'Ankle boot');
  assert.throws(() => train.labels?.([4]), /out of range/);
  const test = await openDataset(source, { imageSize: 28, channels: 1, split: 'test' });
  assert.equal(test.size, 2);
  assert.equal(test.source, source, 'the held-out part is named by the training source');
  assert.equal(test.labels, undefined, 'no t10k labels file: no labels');
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(labelBytes([1, 2])));
  await assert.rejects(openDataset(source, { imageSize: 28, channels: 1 }), /2 labels for 4 images/);

  const cifar = path.join(tmp, 'cifar-split');
  fs.mkdirSync(cifar);
  const rec = (label: number) => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, label * 20)]);
  fs.writeFileSync(path.join(cifar, 'data_batch_1.bin'), Buffer.concat([rec(3), rec(7)]));
  fs.writeFileSync(path.join(cifar, 'test_batch.bin'), rec(8));
  const c = await openDataset(`cifar10:${cifar}`, { imageSize: 32, channels: 3 });
  assert.deepEqual([...(c.labels?.([1, 0]) ?? [])], [7, 3]);
  assert.equal(c.classes?.[3], 'cat');
  const ct = await openDataset(`cifar10:${cifar}`, { imageSize: 32, channels: 3, split: 'test' });
  assert.equal(ct.size, 1);
  assert.deepEqual([...(ct.labels?.([0]) ?? [])], [8]);

  const folder = path.join(tmp, 'classes');
  for (const [cls, n] of [
    ['cats', 2],
    ['dogs', 1],
  ] as const) {
    fs.mkdirSync(path.join(folder, cls), { recursive: true });
    for (let i = 0; i < n; i++)
      await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 10 * i, g: 0, b: 0 } } })
        .png()
        .toFile(path.join(folder, cls, `${i}.png`));
  }
  const f = await openDataset(`folder:${folder}`, { imageSize: 8, channels: 3 });
  assert.deepEqual(f.classes, ['cats', 'dogs']);
  assert.deepEqual([...(f.labels?.([0, 1, 2]) ?? [])].sort(), [0, 0, 1]);
  await assert.rejects(
    openDataset(`folder:${folder}`, { imageSize: 8, channels: 3, split: 'test' }),
    /no held-out images/,
  );
});
