// Training runs as jobs: exact resume, stop-and-save, checkpoint rotation, atomic writes; the data order; MNIST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../sidecar/backend.ts';
import { runTrainJob, SHUTDOWN, type TrainJobOptions } from '../../sidecar/jobs/train.ts';
import {
  loadCheckpoint,
  saveCheckpoint,
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
} from '../../sidecar/checkpoint/checkpoint.ts';
import { EpochOrder } from '../../sidecar/data/dataset.ts';
import { mnistDataset } from '../../sidecar/data/mnist.ts';
import { paramSpecs, presetConfig } from '../../sidecar/ddpm/unet.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-job-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = (out: string, steps: number): TrainJobOptions => ({
  data: 'mnist',
  preset: 'tiny',
  steps,
  batch: 4,
  out: path.join(tmp, out),
  saveEvery: 0,
  seed: 3,
  train: { lr: 1e-3, warmupSteps: 3, emaDecay: 0.9, randomFlip: true },
  backend: 'wasm',
});

const losses = (dir: string) =>
  fs
    .readFileSync(path.join(tmp, dir, 'loss.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',').slice(0, 4).join(','));

test('exact resume: 8 steps in one go = 4 steps, stop, resume to 8 (same weights, EMA, Adam state and losses)', async () => {
  await initBackend('wasm');
  const a = await runTrainJob(base('straight', 8));
  assert.equal(a.step, 8);
  assert.equal(a.reason, 'done');
  const b1 = await runTrainJob(base('resumed', 4));
  assert.equal(b1.step, 4);
  const resumedEvents: number[] = [];
  const b2 = await runTrainJob({
    ...base('resumed', 8),
    resume: true,
    onEvent: (e) => e.type === 'resumed' && resumedEvents.push(e.step),
  });
  assert.deepEqual(resumedEvents, [4]);
  assert.equal(b2.step, 8);
  assert.deepEqual(losses('resumed'), losses('straight'));
  assert.equal(losses('straight').length, 8);
  const ca = loadCheckpoint(a.checkpoint);
  const cb = loadCheckpoint(b2.checkpoint);
  assert.deepEqual(ca.meta.rng, cb.meta.rng);
  for (const g of ['model', 'ema', 'adam.m', 'adam.v'] as const) {
    const ga = ca.groups[g]!;
    const gb = cb.groups[g]!;
    assert.equal(ga.size, gb.size);
    assert.equal(ga.size, paramSpecs(ca.meta.model).length);
    for (const [name, t] of ga)
      assert.deepEqual(Buffer.from(gb.get(name)!.data.buffer), Buffer.from(t.data.buffer), `${g}.${name}`);
  }
  assert.deepEqual(ca.meta.lossHistory, cb.meta.lossHistory);
  assert.equal(ca.meta.model.imageSize, 28, "the tiny preset follows MNIST's 28×28");
});

test('a stop signal ends the run after the current step with a loadable checkpoint; checkpoints rotate', async () => {
  await initBackend('wasm');
  const controller = new AbortController();
  const events: string[] = [];
  const r = await runTrainJob({
    ...base('stopped', 100),
    saveEvery: 2,
    keep: 2,
    signal: controller.signal,
    onProgress: (p) => p.step === 7 && controller.abort(),
    onEvent: (e) => events.push(`${e.type}:${'step' in e ? e.step : ''}`),
  });
  assert.equal(r.reason, 'stopped');
  assert.equal(r.step, 7);
  assert.deepEqual(events, ['checkpoint:2', 'checkpoint:4', 'checkpoint:6', 'checkpoint:7']);
  const files = fs
    .readdirSync(path.join(tmp, 'stopped'))
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  assert.deepEqual(files, ['ckpt-0000006.safetensors', 'ckpt-0000007.safetensors', 'latest.safetensors']);
  const ck = loadCheckpoint(path.join(tmp, 'stopped', 'latest.safetensors'));
  assert.equal(ck.meta.step, 7);
  assert.equal(ck.meta.format, CHECKPOINT_FORMAT);
  assert.equal(ck.meta.kind, 'training');
  assert.equal(ck.meta.data?.source, 'mnist');
  assert.equal(ck.meta.lossHistory?.steps.length, 7);
});

test('a run that ends or stops between previews draws one more grid from its final weights, after its checkpoint', async () => {
  await initBackend('wasm');
  const run = async (dir: string, o: Partial<TrainJobOptions>) => {
    const events: string[] = [];
    const r = await runTrainJob({
      ...base(dir, 5),
      sampleCount: 4,
      sampleSteps: 2,
      ...o,
      onEvent: (e) => events.push(`${e.type}:${'step' in e ? e.step : ''}`),
    });
    const grids = fs.existsSync(path.join(tmp, dir, 'samples')) ? fs.readdirSync(path.join(tmp, dir, 'samples')) : [];
    return { r, events, grids: grids.sort() };
  };
  // Ends at step 5 with its last preview at 3: a grid at 5.
  const ended = await run('preview-end', { sampleEvery: 3 });
  assert.equal(ended.r.reason, 'done');
  assert.deepEqual(ended.events, ['samples:3', 'checkpoint:5', 'samples:5']);
  assert.deepEqual(ended.grids, ['step-0000003.png', 'step-0000005.png']);
  // A run whose last step had its preview draws none more.
  const onTime = await run('preview-on-time', { sampleEvery: 5 });
  assert.deepEqual(onTime.events, ['samples:5', 'checkpoint:5']);
  // Stopped at step 2, long before its first preview (every 500): a grid at 2.
  const controller = new AbortController();
  const stopped = await run('preview-stop', {
    steps: 100,
    sampleEvery: 500,
    signal: controller.signal,
    onProgress: (p) => p.step === 2 && controller.abort(),
  });
  assert.equal(stopped.r.reason, 'stopped');
  assert.deepEqual(stopped.events, ['checkpoint:2', 'samples:2']);
  assert.deepEqual(stopped.grids, ['step-0000002.png']);
  // A process about to exit (abort reason SHUTDOWN) saves and ends without it.
  const exiting = new AbortController();
  const exited = await run('preview-exit', {
    steps: 100,
    sampleEvery: 500,
    signal: exiting.signal,
    onProgress: (p) => p.step === 2 && exiting.abort(SHUTDOWN),
  });
  assert.equal(exited.r.reason, 'stopped');
  assert.deepEqual(exited.events, ['checkpoint:2']);
  // sampleEvery 0 means no grids, at the end too.
  const never = await run('preview-never', { sampleEvery: 0 });
  assert.deepEqual(never.events, ['checkpoint:5']);
  assert.deepEqual(never.grids, []);
});

test('resuming a run on other data, or from a weights-only file, is refused with a clear message', async () => {
  await initBackend('wasm');
  await assert.rejects(
    runTrainJob({ ...base('straight', 10), data: 'folder:/nowhere', resume: true }),
    /was trained on 'mnist', not 'folder:\/nowhere'/,
  );
  await assert.rejects(runTrainJob({ ...base('bad', 2), data: 'imagenet' }), /unknown data source 'imagenet'/);
});

test('a failed save leaves the previous checkpoint intact and no temporary files', () => {
  const dir = path.join(tmp, 'atomic');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'c.safetensors');
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    kind: 'weights' as const,
    model: presetConfig('tiny'),
    schedule: { kind: 'linear' as const, T: 1000, betaStart: 1e-4, betaEnd: 0.02, cosineS: 0.008, maxBeta: 0.999 },
    step: 1,
    seed: 0,
    created: 'now',
  };
  saveCheckpoint(file, { meta, groups: { model: new Map([['w', { shape: [2], data: new Float32Array([1, 2]) }]]) } });
  const before = fs.readFileSync(file);
  assert.throws(
    () =>
      saveCheckpoint(file, {
        meta,
        groups: { model: new Map([['w', { shape: [3], data: new Float32Array([1, 2]) }]]) },
      }),
    /shape \[3\] has 3 elements but data has 2/,
  );
  assert.deepEqual(fs.readFileSync(file), before);
  assert.deepEqual(fs.readdirSync(dir), ['c.safetensors']);
});

test('data order: every epoch is a permutation, deterministic per seed, and batches run across epochs', () => {
  const o = new EpochOrder(10, 7);
  const firstEpoch = [...o.batch(0, 4), ...o.batch(1, 4), ...o.batch(2, 4).slice(0, 2)];
  assert.deepEqual(
    [...firstEpoch].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.deepEqual(new EpochOrder(10, 7).batch(2, 4), o.batch(2, 4));
  assert.notDeepEqual(new EpochOrder(10, 8).batch(0, 10), o.batch(0, 10));
  assert.notDeepEqual(o.batch(0, 10), o.batch(1, 10), 'each epoch is shuffled anew');
  assert.throws(() => new EpochOrder(0, 1), /dataset is empty/);
});

test('the bundled MNIST digits: 8,995 to train and 1,005 held out, labelled, 28×28 in [−1, 1], every class early, padding to 32', async () => {
  const d = mnistDataset();
  assert.equal(d.size, 8_995);
  const held = mnistDataset({ split: 'test' });
  assert.equal(held.size, 1_005);
  // Interleaved: the first ten of each split are the digits 0..9.
  assert.deepEqual([...(d.labels?.([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) ?? [])], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...(held.labels?.([0, 9]) ?? [])], [0, 9]);
  // No held-out digit is a training digit.
  const train = await d.read(Array.from({ length: d.size }, (_, i) => i));
  const key = (x: Float32Array, i: number) => x.subarray(i * 784, (i + 1) * 784).join(',');
  const seen = new Set(Array.from({ length: d.size }, (_, i) => key(train, i)));
  const test = await held.read(Array.from({ length: held.size }, (_, i) => i));
  assert.ok(Array.from({ length: held.size }, (_, i) => key(test, i)).every((k) => !seen.has(k)));
  assert.equal(d.channels, 1);
  const x = await d.read([0, 1, 8994]);
  assert.equal(x.length, 3 * 28 * 28);
  assert.ok(x.every((v) => v >= -1 && v <= 1));
  assert.ok(x.some((v) => v > 0.9) && x.some((v) => v === -1));
  const p = mnistDataset({ imageSize: 32 });
  const y = await p.read([0]);
  assert.equal(y.length, 32 * 32);
  assert.ok(
    y.slice(0, 64).every((v) => v === -1),
    'the border is background',
  );
  await assert.rejects(d.read([8_995]), /out of range/);
  assert.equal(mnistDataset({ imageSize: 16 }).imageSize, 28, 'never smaller than the digits');
});
