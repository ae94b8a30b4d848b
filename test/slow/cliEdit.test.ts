// `ddpm inpaint` and `ddpm img2img`, the bundled command line (dist/ddpm.js) on a tiny checkpoint: the grid written,
// the kept half equal to the input, the progress and summary lines, and the exit codes of bad usage and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { cliIn, pngSize } from '../helpers/cli.ts';
import { saveTinyCheckpoint } from '../helpers/tinyCheckpoint.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-cli-edit-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ddpm = cliIn(tmp);

test.before(async () => {
  saveTinyCheckpoint(path.join(tmp, 'tiny.safetensors'), 30);
  const ring = Buffer.from(
    Array.from({ length: 28 * 28 }, (_, i) =>
      Math.abs(Math.hypot((i % 28) - 13.5, Math.floor(i / 28) - 13.5) - 8) < 2 ? 250 : 3,
    ),
  );
  await sharp(ring, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(path.join(tmp, 'ring.png'));
  const top = Buffer.from(Array.from({ length: 28 * 28 }, (_, i) => (i < 14 * 28 ? 255 : 0)));
  await sharp(top, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(path.join(tmp, 'top.png'));
});

const tile = async (file: string, k: number, cols: number) => {
  // Tile k of a grid with 2-px gaps, as one grey channel.
  const [x, y] = [2 + (k % cols) * 30, 2 + Math.floor(k / cols) * 30];
  const { data } = await sharp(path.join(tmp, file))
    .extract({ left: x, top: y, width: 28, height: 28 })
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return data;
};

test('ddpm inpaint: the grid of n inpaintings, each with the bottom half of the input', async () => {
  const r = ddpm(
    ...['inpaint', '--ckpt', 'tiny.safetensors', '--image', 'ring.png', '--mask', 'top.png'],
    ...['--steps', '6', '--jumps', '2', '--resample', '2', '--n', '2', '--out', 'out/inp.png'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /inpainting 2 images: 10 denoising steps \(6 timesteps, jumps of 2, r = 2\) on \d+ threads?/);
  assert.match(r.stderr, /wrote out\/inp\.png/);
  assert.deepEqual(await pngSize(tmp, 'out/inp.png'), [2 * 28 + 3 * 2, 28 + 2 * 2]);
  const { data: input } = await sharp(path.join(tmp, 'ring.png'))
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  for (const k of [0, 1]) {
    const px = await tile('out/inp.png', k, 2);
    assert.deepEqual(Array.from(px.slice(14 * 28)), Array.from(input.slice(14 * 28)), `image ${k}: the kept half`);
    assert.notDeepEqual(Array.from(px.slice(0, 14 * 28)), Array.from(input.slice(0, 14 * 28)));
  }
});

test('ddpm img2img: n edits from t0 = strength·T; bad usage exits 2, a missing mask 1', async () => {
  const r = ddpm(
    ...['img2img', '--ckpt', 'tiny.safetensors', '--image', 'ring.png', '--strength', '0.5', '--n', '3'],
    ...['--steps', '5', '--out', 'i2i.png'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /3 edits of ring\.png from t0 = 15 \(strength 0\.5\): \d+ steps on/);
  assert.deepEqual(await pngSize(tmp, 'i2i.png'), [2 * 28 + 3 * 2, 2 * 28 + 3 * 2]);
  const bad = ddpm('img2img', '--ckpt', 'tiny.safetensors', '--image', 'ring.png', '--strength', '2');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--strength must be a number in \[0, 1\], got 2/);
  const missing = ddpm('inpaint', '--ckpt', 'tiny.safetensors', '--image', 'ring.png', '--mask', 'none.png');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /mask not found: none\.png/);
  const usage = ddpm('help', 'inpaint');
  assert.equal(usage.code, 0);
  assert.match(
    usage.stdout,
    /--ckpt FILE --image IMG --mask MASK\.png \[--n 4\] \[--steps 50\] \[--jumps 5\] \[--resample 5\]/,
  );
});
