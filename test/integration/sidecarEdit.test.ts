// ddpm/inpaint and ddpm/img2img through the real sidecar process over real JSON-RPC: results, the known region,
// progress and frames (ddpm/editProgress), threads, cancellation, and the errors a client gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import sharp from 'sharp';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import {
  EditProgressNotification,
  ErrorCodes,
  Img2ImgRequest,
  InpaintRequest,
  SampleRequest,
  type EditProgressParams,
} from '../../sidecar/protocol.ts';
import { sidecarSuite } from '../helpers/sidecarSuite.ts';
import { saveTinyCheckpoint } from '../helpers/tinyCheckpoint.ts';

const { tmp, sc } = sidecarSuite('ddpm-sidecar-edit-');
const checkpoint = path.join(tmp, 'tiny.safetensors');
const image = path.join(tmp, 'ring.png');
const mask = path.join(tmp, 'left.png');
test.before(async () => {
  saveTinyCheckpoint(checkpoint, 40);
  // A 56×56 RGB image and a 56×56 mask (the left half white): both are converted to the model's 28×28 grey.
  const ring = Buffer.alloc(56 * 56 * 3);
  for (let i = 0; i < 56 * 56; i++)
    ring.fill(Math.abs(Math.hypot((i % 56) - 27.5, Math.floor(i / 56) - 27.5) - 16) < 4 ? 240 : 10, i * 3, i * 3 + 3);
  await sharp(ring, { raw: { width: 56, height: 56, channels: 3 } })
    .png()
    .toFile(image);
  const left = Buffer.from(Array.from({ length: 56 * 56 }, (_, i) => (i % 56 < 28 ? 255 : 0)));
  await sharp(left, { raw: { width: 56, height: 56, channels: 1 } })
    .png()
    .toFile(mask);
});

const grey = async (b64: string) =>
  (await sharp(Buffer.from(b64, 'base64')).extractChannel(0).raw().toBuffer({ resolveWithObject: true })).data;

test('ddpm/inpaint: the right half of every image is the input’s; steps, re-noising jumps and frames arrive', async () => {
  const progress: EditProgressParams[] = [];
  const sub = sc.connection.onNotification(EditProgressNotification, (p) => p.token === 'inp' && progress.push(p));
  const params = { checkpoint, image, mask, n: 2, steps: 8, jumps: 2, resample: 3 };
  const r = await sc.connection.sendRequest(InpaintRequest, { ...params, frames: 3, token: 'inp' });
  sub.dispose();
  // 8 timesteps, jump points 0, 2, 4, each passed 3 times: 8 + 3·2·2 reverse steps, 12 up.
  assert.equal(r.modelSteps, 20);
  const steps = progress.filter((p) => !p.frame);
  assert.equal(steps.length, 32);
  assert.equal(steps.filter((p) => p.up).length, 12);
  assert.deepEqual(
    steps.map((p) => p.step),
    Array.from({ length: 32 }, (_, i) => i),
  );
  assert.deepEqual(
    progress.filter((p) => p.frame).map((p) => p.frame!.index),
    [0, 10, 19],
  );
  assert.deepEqual([r.imageSize, r.channels, r.images.length], [28, 1, 2]);
  const input = await grey(r.input);
  const used = await grey(r.mask!);
  assert.deepEqual(
    Array.from(used.slice(0, 28)),
    Array.from({ length: 28 }, (_, x) => (x < 14 ? 255 : 0)),
  );
  for (const png of r.images) {
    const px = await grey(png);
    for (let i = 0; i < px.length; i++) if (used[i] === 0) assert.equal(px[i], input[i], `kept pixel ${i}`);
  }
  // On two threads (the batch split between them): the same images.
  const threaded = await sc.connection.sendRequest(InpaintRequest, { ...params, workers: 2 });
  assert.deepEqual(threaded.images, r.images);
});

test('ddpm/img2img: strength 0 is the input, strength 1 is ddpm/sample with the same seed', async () => {
  const zero = await sc.connection.sendRequest(Img2ImgRequest, { checkpoint, image, strength: 0, n: 2, steps: 10 });
  assert.equal(zero.modelSteps, 0);
  for (const png of zero.images) assert.deepEqual(await grey(png), await grey(zero.input));
  const one = await sc.connection.sendRequest(Img2ImgRequest, { checkpoint, image, strength: 1, n: 3, steps: 10 });
  const sampled = await sc.connection.sendRequest(SampleRequest, { checkpoint, n: 3, steps: 10, seed: 0 });
  assert.equal(one.modelSteps, 10);
  assert.deepEqual(one.images, sampled.images);
  const half = await sc.connection.sendRequest(Img2ImgRequest, { checkpoint, image, strength: 0.5, n: 2, steps: 10 });
  // DDIM from t₀ − 1 = 19 on the trailing 10-step grid of T = 40 (35, 31, …, 3): 19, then 15, 11, 7, 3.
  assert.equal(half.modelSteps, 5);
});

test('errors: a bad field is InvalidParams naming it; a missing mask NotFound; a black mask BadInput; Cancel stops', async () => {
  const fails = async (params: object, code: number, message: RegExp) => {
    const e = await sc.connection
      .sendRequest(InpaintRequest, { checkpoint, image, mask, steps: 4, ...params } as never)
      .then(
        () => assert.fail('did not fail'),
        (err: ResponseError<unknown>) => err,
      );
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
  };
  await fails({ jumps: 0 }, ErrorCodes.InvalidParams, /field 'jumps' must be an integer in 1\.\.1000, got 0/);
  await fails({ mask: path.join(tmp, 'nope.png') }, ErrorCodes.NotFound, /mask not found/);
  const black = `data:image/png;base64,${(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .png()
      .toBuffer()
  ).toString('base64')}`;
  await fails({ mask: black }, ErrorCodes.BadInput, /black everywhere/);

  const cts = new CancellationTokenSource();
  let seen = 0;
  const sub = sc.connection.onNotification(EditProgressNotification, (p) => {
    if (p.token === 'stop' && ++seen === 3) cts.cancel();
  });
  const e = await sc.connection
    .sendRequest(
      InpaintRequest,
      { checkpoint, image, mask, steps: 40, jumps: 2, resample: 5, token: 'stop' },
      cts.token,
    )
    .then(
      () => assert.fail('not cancelled'),
      (err: ResponseError<unknown>) => err,
    );
  sub.dispose();
  assert.equal(e.code, ErrorCodes.RequestCancelled);
  assert.ok(seen < 10, `${seen} steps after the cancel`);
});
