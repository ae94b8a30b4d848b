// ddpm/evaluate and `ddpm eval`: the request schema and its flags, and the job (jobs/evaluate.ts) on a tiny
// checkpoint with T = 16: the held-out images, the summary's arithmetic, seeding, progress, cancellation, the folder
// fallback and the refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { parseCommand, usageOf, UsageError } from '../../sidecar/cliFlags.ts';
import { evaluateText } from '../../sidecar/cliTerminal.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { evaluateCheckpoint, type EvaluateJobOptions } from '../../sidecar/jobs/evaluate.ts';
import { EvaluateParamsSchema } from '../../sidecar/protocol.ts';
import { parseParams, ParamsError } from '../../sidecar/validation.ts';
import { saveTinyCheckpoint } from '../helpers/tinyCheckpoint.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-eval-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ckpt = path.join(tmp, 'tiny.safetensors');
const T = 16;

test('the request: defaults, bounds in the same words as the other requests, and the CLI flags', () => {
  const o = parseParams(EvaluateParamsSchema, { checkpoint: 'a.safetensors', data: 'mnist' });
  assert.deepEqual(o, {
    checkpoint: 'a.safetensors',
    data: 'mnist',
    n: 64,
    bpd: true,
    quality: false,
    seed: 0,
    ema: true,
    workers: 'auto',
  });
  assert.throws(
    () => parseParams(EvaluateParamsSchema, { checkpoint: 'a', data: 'mnist', n: 0 }),
    (e: Error) => e instanceof ParamsError && e.message === "field 'n' must be an integer in 1..10000, got 0",
  );
  assert.throws(() => parseParams(EvaluateParamsSchema, { checkpoint: 'a' }), /missing field 'data'/);
  const spec = { schema: EvaluateParamsSchema, rename: { checkpoint: 'ckpt' }, omit: ['token' as const] };
  const { params } = parseCommand(spec, ['--ckpt', 'm.safetensors', '--data', 'cifar10:/d', '--n', '8', '--no-ema']);
  assert.equal(params.checkpoint, 'm.safetensors');
  assert.equal(params.n, 8);
  assert.equal(params.ema, false);
  assert.equal(params.bpd, true);
  assert.throws(
    () => parseCommand(spec, ['--ckpt', 'm', '--data', 'mnist', '--n', '20000']),
    (e: Error) => e instanceof UsageError && /--n must be an integer in 1\.\.10000, got 20000/.test(e.message),
  );
  assert.match(
    usageOf(spec),
    /^--ckpt CHECKPOINT --data DATA \[--n 64\] \[--bpd\|--no-bpd\] \[--quality\|--no-quality\] \[--seed 0\]/,
  );
});

test('bits/dim of a tiny checkpoint on 3 held-out MNIST digits: every term summed, seeded, progress to N·T', async () => {
  await initBackend('wasm');
  saveTinyCheckpoint(ckpt, T);
  const base: EvaluateJobOptions = {
    checkpoint: ckpt,
    data: 'mnist',
    n: 3,
    bpd: true,
    quality: false,
    seed: 4,
    ema: true,
    workers: 1,
  };
  const before = tf.memory().numTensors;
  const progress: number[] = [];
  let started: unknown = null;
  const r = await evaluateCheckpoint({
    ...base,
    onStart: (s) => (started = s),
    onProgress: (p) => {
      assert.equal(p.stage, 'bpd');
      assert.equal(p.total, 3 * T);
      progress.push(p.done);
    },
  });
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  assert.deepEqual(started, { n: 3, T, total: 3 * T, threads: 1 });
  assert.equal(progress.at(-1), 3 * T);
  assert.ok(progress.every((d, i) => i === 0 || d > progress[i - 1]));
  assert.equal(r.step, 7);
  assert.equal(r.weights, 'raw');
  assert.deepEqual(r.data, { source: 'mnist', split: 'test' });
  assert.deepEqual(r.images, [0, 1, 2]);
  assert.equal(r.n, 3);
  assert.equal(r.T, T);
  assert.equal(r.forwardPasses, 3 * T);
  assert.equal(r.backend.name, 'wasm');
  const b = r.bpd!;
  assert.equal(b.variance, 'fixedlarge');
  assert.equal(b.clip, true);
  assert.equal(b.perImage.length, 3);
  for (const k of ['vb', 'x0Mse', 'epsMse'] as const) assert.equal(b.perT[k].length, T);
  const close = (a: number, e: number, what: string) =>
    assert.ok(Math.abs(a - e) <= 1e-9 * Math.max(1, Math.abs(e)), `${what}: ${a} vs ${e}`);
  close(b.mean, b.perImage.reduce((x, y) => x + y, 0) / 3, 'mean of the images');
  close(b.mean, b.prior + b.decoder + b.kl, 'prior + decoder + Σ KL');
  close(b.decoder, b.perT.vb[0], 'decoder = the term at t = 0');
  const sd = Math.sqrt(b.perImage.reduce((s, v) => s + (v - b.mean) ** 2, 0) / 2);
  close(b.stderr!, sd / Math.sqrt(3), 'standard error');
  assert.deepEqual(
    b.quarters.map((q) => [q.from, q.to]),
    [
      [0, 3],
      [4, 7],
      [8, 11],
      [12, 15],
    ],
  );
  close(
    b.quarters.reduce((s, q) => s + q.vb, 0),
    b.decoder + b.kl,
    'the quarters sum to the terms',
  );
  close(b.quarters[1].x0Mse, b.perT.x0Mse.slice(4, 8).reduce((x, y) => x + y, 0) / 4, 'a quarter averages the MSE');
  // A random tiny model is far from the data (≈ 6 bits/dim here; the shipped MNIST model ≈ 2 at T = 1000).
  assert.ok(b.mean > 4, `${b.mean} bits/dim`);
  // With T = 16 the schedule ends at ᾱ ≈ 0.85: the prior term is large, unlike T = 1000's.
  assert.ok(b.prior > 0.01, `prior ${b.prior}`);

  const again = await evaluateCheckpoint({ ...base, workers: 'auto' });
  assert.deepEqual(again.bpd!.perImage, b.perImage, 'the same seed gives the same numbers');
  const other = await evaluateCheckpoint({ ...base, seed: 5 });
  assert.notDeepEqual(other.bpd!.perImage, b.perImage);
  const two = await evaluateCheckpoint({ ...base, n: 2 });
  for (let i = 0; i < 2; i++)
    assert.ok(Math.abs(two.bpd!.perImage[i] - b.perImage[i]) < 1e-5, 'an image gets the same noise whatever n');

  const text = evaluateText(r);
  assert.match(text, /^.*tiny\.safetensors: step 7, raw weights$/m);
  assert.match(text, /^data: mnist, held-out images 0–2 \(3\); T = 16; seed 4$/m);
  assert.match(text, new RegExp(`^bits/dim  ${b.mean.toFixed(4)} ± ${b.stderr!.toFixed(4)}`, 'm'));
  assert.match(text, /^ {2}0–3 /m);
  assert.match(text, /^ {2}12–15 /m);
  assert.match(text, /^ {2}t = 15 /m);
  assert.doesNotMatch(text, /t = 50/);
  assert.match(text, /48 forward passes in [\d.]+ s on wasm/);
});

test('cancelled between passes: an AbortError (the transports report it as cancelled), nothing left behind', async () => {
  await initBackend('wasm');
  if (!fs.existsSync(ckpt)) saveTinyCheckpoint(ckpt, T);
  const ac = new AbortController();
  const before = tf.memory().numTensors;
  await assert.rejects(
    evaluateCheckpoint({
      checkpoint: ckpt,
      data: 'mnist',
      n: 8,
      bpd: true,
      quality: false,
      seed: 0,
      ema: true,
      workers: 1,
      signal: ac.signal,
      onProgress: () => ac.abort(),
    }),
    (e: Error) => classifyError(e) === 'cancelled',
  );
  assert.equal(tf.memory().numTensors, before);
});

test('a folder has no held-out part: its own images, said in the result; refusals name what is wrong', async () => {
  await initBackend('wasm');
  if (!fs.existsSync(ckpt)) saveTinyCheckpoint(ckpt, T);
  const folder = path.join(tmp, 'images');
  fs.mkdirSync(folder, { recursive: true });
  for (let i = 0; i < 2; i++)
    await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 40 * i, g: 200, b: 90 } } })
      .png()
      .toFile(path.join(folder, `${i}.png`));
  const base: EvaluateJobOptions = {
    checkpoint: ckpt,
    data: `folder:${folder}`,
    n: 2,
    bpd: true,
    quality: false,
    seed: 0,
    ema: true,
    workers: 1,
  };
  const r = await evaluateCheckpoint(base);
  assert.equal(r.data.split, 'all');
  assert.match(r.data.note!, /a folder has no held-out part/);
  assert.match(evaluateText(r), /^note: a folder has no held-out part/m);
  assert.equal(r.bpd!.perImage.length, 2);

  const refused = async (o: Partial<EvaluateJobOptions>, kind: string, message: RegExp) =>
    assert.rejects(
      evaluateCheckpoint({ ...base, ...o }),
      (e: Error) => classifyError(e) === kind && message.test(e.message),
    );
  await refused({ n: 3 }, 'bad-input', /has 2 images, fewer than n = 3/);
  await refused({ quality: true }, 'bad-input', /^quality: no sample-quality classifier exists for the data 'folder:/);
  await refused({ bpd: false }, 'bad-input', /nothing to evaluate/);
  await refused({ data: 'imagenet' }, 'bad-input', /unknown data source 'imagenet'/);
  await refused({ checkpoint: path.join(tmp, 'none.safetensors') }, 'not-found', /checkpoint not found/);
  await refused({ data: 'mnist', n: 2000 }, 'bad-input', /mnist has 1005 held-out images, fewer than n = 2000/);
});
