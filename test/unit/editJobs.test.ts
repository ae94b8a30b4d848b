// ddpm/inpaint and ddpm/img2img: the request schemas and their CLI flags, and the jobs (jobs/inpaint.ts,
// jobs/img2img.ts) on a tiny 28×28 checkpoint with T = 20: the known region of the PNGs, the mask as a file or a data
// URL, frames, the refusals, and the class of a conditional checkpoint reaching the model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { parseCommand, UsageError } from '../../sidecar/cliFlags.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { img2img } from '../../sidecar/jobs/img2img.ts';
import { inpaintImage } from '../../sidecar/jobs/inpaint.ts';
import { Img2ImgParamsSchema, InpaintParamsSchema } from '../../sidecar/protocol.ts';
import { parseParams } from '../../sidecar/validation.ts';
import { saveTinyCheckpoint } from '../helpers/tinyCheckpoint.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-edit-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ckpt = path.join(tmp, 'tiny.safetensors');
const conditional = path.join(tmp, 'tiny-cond.safetensors');
const image = path.join(tmp, 'digit.png');
const mask = path.join(tmp, 'mask.png');
/** Regenerate the top half (white), keep the bottom. */
const maskPixels = Buffer.from(Array.from({ length: 28 * 28 }, (_, i) => (i < 14 * 28 ? 255 : 0)));

test.before(async () => {
  saveTinyCheckpoint(ckpt, 20);
  saveTinyCheckpoint(conditional, 20, 2, 10);
  // A bright ring on black, and the mask, both 28×28 grey-scale.
  const ring = Buffer.from(
    Array.from({ length: 28 * 28 }, (_, i) => {
      const r = Math.hypot((i % 28) - 13.5, Math.floor(i / 28) - 13.5);
      return Math.abs(r - 8) < 2 ? 250 : 3;
    }),
  );
  await sharp(ring, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(image);
  await sharp(maskPixels, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(mask);
});

const grey = async (png: Buffer) =>
  (await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true })).data;

test('the requests: defaults, bounds, and the CLI flags (--jumps, --resample, --strength, --n)', () => {
  const i = parseParams(InpaintParamsSchema, { checkpoint: 'c', image: 'a.png', mask: 'm.png' });
  assert.deepEqual(
    { n: i.n, steps: i.steps, jumps: i.jumps, resample: i.resample, class: i.class, frames: i.frames },
    { n: 4, steps: 50, jumps: 5, resample: 5, class: 'any', frames: 0 },
  );
  assert.throws(() => parseParams(InpaintParamsSchema, { checkpoint: 'c', image: 'a.png' }), /missing field 'mask'/);
  const g = parseParams(Img2ImgParamsSchema, { checkpoint: 'c', image: 'a.png' });
  assert.deepEqual({ strength: g.strength, n: g.n, sampler: g.sampler }, { strength: 0.5, n: 8, sampler: 'ddim' });
  assert.throws(
    () => parseParams(Img2ImgParamsSchema, { checkpoint: 'c', image: 'a.png', strength: 1.5 }),
    /field 'strength' must be a number in \[0, 1\], got 1\.5/,
  );
  const spec = { schema: InpaintParamsSchema, rename: { checkpoint: 'ckpt' as const }, omit: ['token' as const] };
  const { params } = parseCommand(spec, [
    ...['--ckpt', 'm.safetensors', '--image', 'x.png', '--mask', 'k.png'],
    ...['--jumps', '3', '--resample', '2'],
  ]);
  assert.deepEqual([params.mask, params.jumps, params.resample], ['k.png', 3, 2]);
  assert.throws(
    () => parseCommand(spec, ['--ckpt', 'm', '--image', 'x', '--mask', 'k', '--resample', '0']),
    (e: Error) => e instanceof UsageError && /--resample must be an integer in 1\.\.100, got 0/.test(e.message),
  );
  const s2 = { schema: Img2ImgParamsSchema, rename: { checkpoint: 'ckpt' as const }, omit: ['token' as const] };
  const p2 = parseCommand(s2, ['--ckpt', 'm', '--image', 'x.png', '--strength', '0.25', '--n', '3']).params;
  assert.deepEqual([p2.strength, p2.n], [0.25, 3]);
});

test('inpainting: the kept half of every image is the input’s, pixel for pixel; the mask comes back; frames stream', async () => {
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const frames: number[] = [];
  const steps: { index: number; total: number; up?: boolean }[] = [];
  let modelSteps = 0;
  const r = await inpaintImage({
    ...parseParams(InpaintParamsSchema, { checkpoint: ckpt, image, mask, n: 3, steps: 10, jumps: 2, resample: 2 }),
    frames: 4,
    workers: 1,
    onStart: (s) => (modelSteps = s.modelSteps),
    onStep: (s) => void steps.push(s),
    onFrame: async (f) => {
      frames.push(f.index);
      assert.equal((await sharp(f.xt).metadata()).width, 2 * 28 + 3 * 2);
    },
  });
  assert.equal(tf.memory().numTensors, before);
  // 10 timesteps, jump points 0, 2, 4, 6, each passed twice: 10 + 4·2 reverse steps, 4·2 up.
  assert.equal(modelSteps, 18);
  assert.equal(r.modelSteps, 18);
  assert.equal(steps.length, 26);
  assert.equal(steps.filter((s) => s.up).length, 8);
  assert.deepEqual(frames, [0, 6, 11, 17]);
  assert.equal(r.images.length, 3);
  const input = await grey(r.input);
  assert.deepEqual(await grey(r.mask!), maskPixels);
  for (const png of r.images) {
    const px = await grey(png);
    let differ = 0;
    for (let i = 0; i < px.length; i++) {
      if (i >= 14 * 28) assert.equal(px[i], input[i], `kept pixel ${i}`);
      else if (px[i] !== input[i]) differ++;
    }
    assert.ok(differ > 100, `only ${differ} regenerated pixels differ from the input`);
  }
  // The same mask as a data URL (what the webview sends) gives the same images.
  const url = `data:image/png;base64,${fs.readFileSync(mask).toString('base64')}`;
  const again = await inpaintImage({
    ...parseParams(InpaintParamsSchema, { checkpoint: ckpt, image, mask: url, n: 3, steps: 10, jumps: 2, resample: 2 }),
    workers: 1,
  });
  assert.deepEqual(again.images, r.images);
});

test('refusals: a black mask, a missing image, steps above T, a class for an unconditional checkpoint', async () => {
  await initBackend('wasm');
  const black = path.join(tmp, 'black.png');
  await sharp({ create: { width: 28, height: 28, channels: 3, background: '#000' } })
    .png()
    .toFile(black);
  const base = { checkpoint: ckpt, image, mask, steps: 4, jumps: 2, resample: 1, workers: 1 as const };
  const fails = async (o: object, kind: string, message: RegExp) => {
    const e = await inpaintImage(parseParams(InpaintParamsSchema, { ...base, ...o })).then(
      () => assert.fail('did not throw'),
      (err: Error) => err,
    );
    assert.equal(classifyError(e), kind, e.message);
    assert.match(e.message, message);
  };
  await fails({ mask: black }, 'bad-input', /black everywhere: nothing to inpaint/);
  await fails({ image: path.join(tmp, 'none.png') }, 'not-found', /image not found/);
  await fails({ steps: 21 }, 'bad-input', /at most the checkpoint's T = 20/);
  await fails({ class: 3 }, 'bad-input', /not class-conditional/);
  await fails({ mask: 'data:image/png;base64,AAAA' }, 'bad-input', /the mask: not a readable image/);
});

test('image to image: strength 0 returns the converted input, in between n edits; the class reaches the model', async () => {
  await initBackend('wasm');
  const o = (x: object) =>
    parseParams(Img2ImgParamsSchema, { checkpoint: ckpt, image, n: 2, steps: 10, workers: 1, ...x });
  const zero = await img2img(o({ strength: 0 }));
  assert.equal(zero.modelSteps, 0);
  for (const png of zero.images) assert.deepEqual(await grey(png), await grey(zero.input));
  const ts: number[] = [];
  const half = await img2img({ ...o({ strength: 0.5, sampler: 'ddpm' }), onStep: (s) => void ts.push(s.t) });
  assert.deepEqual(ts, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  assert.notDeepEqual(half.images[0], half.images[1]);
  // A conditional checkpoint: class 3 and class 5 give other images from the same seed (the labels reach ε_θ).
  const c = (k: number) =>
    img2img(
      parseParams(Img2ImgParamsSchema, { checkpoint: conditional, image, n: 2, steps: 10, workers: 1, class: k }),
    );
  const [a, b] = [await c(3), await c(5)];
  assert.deepEqual(a.labels, [3, 3]);
  assert.equal(a.classes?.length, 10);
  assert.notDeepEqual(a.images, b.images);
});
