// The training job's evaluation (evalEvery): eval.csv, the events, and that it leaves the training itself untouched
// (the same losses with and without it, and exact resume with it on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../sidecar/backend.ts';
import { evalTimesteps, runTrainJob, type TrainEvent, type TrainJobOptions } from '../../sidecar/jobs/train.ts';
import { trainEventLine } from '../../sidecar/cliTerminal.ts';
import { trainJobOptions } from '../../sidecar/jobs/trainSession.ts';
import { TrainParamsSchema } from '../../sidecar/protocol.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-eval-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = (out: string, steps: number, evalEvery = 0): TrainJobOptions => ({
  data: 'mnist',
  preset: 'tiny',
  steps,
  batch: 4,
  out: path.join(tmp, out),
  saveEvery: 0,
  seed: 5,
  evalEvery,
  evalImages: 4,
  evalTimesteps: 4,
  train: { lr: 1e-3, warmupSteps: 3, emaDecay: 0.9, randomFlip: true },
  backend: 'wasm',
});

const read = (dir: string, file: string) =>
  fs
    .readFileSync(path.join(tmp, dir, file), 'utf8')
    .trim()
    .split('\n');
// step, loss, grad_norm, lr, then the quarters (the seconds column differs between runs)
const losses = (dir: string) =>
  read(dir, 'loss.csv')
    .slice(1)
    .map((l) => {
      const c = l.split(',');
      return [...c.slice(0, 4), ...c.slice(5)].join(',');
    });

test('the evaluation grid: k values of t at the centres of k equal parts of [0, T)', () => {
  assert.deepEqual(evalTimesteps(1000, 4), [125, 375, 625, 875]);
  assert.deepEqual(evalTimesteps(1000, 10), [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
  assert.deepEqual(evalTimesteps(3, 10), [0, 1, 2]);
});

test('evalEvery is off by default and reaches the job from a request', () => {
  const o = TrainParamsSchema.parse({ data: 'mnist', out: '/tmp/x' });
  assert.equal(o.evalEvery, 0);
  assert.equal(trainJobOptions({ ...o, evalEvery: 7 }).evalEvery, 7);
});

test('evalEvery: eval.csv and eval events every K steps; the same losses as without; exact resume with it on', async () => {
  await initBackend('wasm');
  await runTrainJob(base('plain', 6));
  const events: Extract<TrainEvent, { type: 'eval' }>[] = [];
  await runTrainJob({ ...base('evaluated', 6, 2), onEvent: (e) => e.type === 'eval' && events.push(e) });
  assert.deepEqual(losses('evaluated'), losses('plain'), 'the evaluation does not change the training');
  assert.equal(losses('plain').length, 6);

  assert.deepEqual(
    events.map((e) => e.step),
    [2, 4, 6],
  );
  for (const e of events) {
    assert.deepEqual(
      e.byT.map((b) => b.t),
      [125, 375, 625, 875],
    );
    assert.equal(e.images, 4);
    assert.equal(e.split, 'test', "mnist's held-out digits");
    assert.ok(e.byT.every((b) => Number.isFinite(b.loss) && b.loss > 0));
    assert.ok(Math.abs(e.loss - e.byT.reduce((a, b) => a + b.loss, 0) / 4) < 1e-12);
    assert.equal(e.path, path.join(tmp, 'evaluated', 'eval.csv'));
  }
  assert.match(
    trainEventLine(events[0]),
    /^eval step 2: held-out loss \d\.\d{4} \(4 held-out images, 4 t from 125 to 875\)/,
  );
  const csv = read('evaluated', 'eval.csv');
  assert.equal(csv[0], 'step,loss,t125,t375,t625,t875');
  assert.equal(csv.length, 4);
  assert.deepEqual(
    csv.slice(1).map((r) => Number(r.split(',')[0])),
    [2, 4, 6],
  );
  assert.equal(Number(csv[1].split(',')[1]), events[0].loss);

  // Stop at 4 (after the evaluation at 4), resume to 6: the losses and the evaluations are the straight run's.
  await runTrainJob(base('resumed', 4, 2));
  await runTrainJob({ ...base('resumed', 6, 2), resume: true });
  assert.deepEqual(losses('resumed'), losses('plain'));
  assert.deepEqual(read('resumed', 'eval.csv'), csv);
});
