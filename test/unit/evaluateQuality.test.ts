// ddpm/evaluate with quality (jobs/evaluateQuality.ts) on a tiny checkpoint with T = 16: the samples' numbers and how
// they were drawn, progress by sampler step, the same numbers for the same seed, no tensors left behind, the table;
// the classifier chosen by the checkpoint's data (the request's when the checkpoint names none), and the refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { evaluateText } from '../../sidecar/cliTerminal.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { evaluateCheckpoint, type EvaluateJobOptions } from '../../sidecar/jobs/evaluate.ts';
import { qualityClassifierFile } from '../../sidecar/jobs/evaluateQuality.ts';
import { disposeWeights, loadWeights } from '../../sidecar/jobs/weights.ts';
import { repoRoot } from '../helpers/paths.ts';
import { saveTinyCheckpoint } from '../helpers/tinyCheckpoint.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-quality-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ckpt = path.join(tmp, 'tiny.safetensors');
const T = 16;

test('quality of 4 samples of a tiny checkpoint: DDIM over its 16 steps, every number, seeded, progress', async () => {
  await initBackend('wasm');
  saveTinyCheckpoint(ckpt, T);
  const base: EvaluateJobOptions = {
    checkpoint: ckpt,
    data: 'mnist',
    n: 4,
    bpd: false,
    quality: true,
    seed: 3,
    ema: true,
    workers: 1,
  };
  const before = tf.memory().numTensors;
  const progress: { stage: string; done: number; total: number }[] = [];
  const r = await evaluateCheckpoint({ ...base, onProgress: (p) => progress.push(p) });
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  assert.equal(r.bpd, null);
  assert.equal(r.forwardPasses, 0);
  const q = r.quality!;
  assert.equal(q.n, 4);
  assert.deepEqual(q.sampling, { sampler: 'ddim', steps: T, eta: 1, seed: 3 });
  assert.equal(q.classifier.file, path.join(repoRoot, 'models', 'classifiers', 'mnist.safetensors'));
  assert.equal(q.classifier.source, 'mnist');
  assert.ok(q.classifier.heldOutAccuracy >= 0.985);
  assert.equal(q.classes.length, 10);
  assert.equal(q.classHistogram.length, 10);
  assert.ok(Math.abs(q.classHistogram.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.ok(
    q.classHistogram.every((f) => f * 4 === Math.round(f * 4)),
    'fractions of 4 images',
  );
  assert.equal(q.coverage, q.classHistogram.filter((f) => f >= 0.03).length);
  assert.equal(q.coverageThreshold, 0.03);
  assert.ok(q.meanConfidence >= 0.1 && q.meanConfidence <= 1);
  // A random tiny model draws nothing like digits: far from the real features.
  assert.ok(Number.isFinite(q.frechetDistance) && q.frechetDistance > 100, `${q.frechetDistance}`);
  assert.equal(q.realImages, 1005);
  assert.equal(q.classAgreement, undefined, 'an unconditional model has no classes to agree with');
  assert.deepEqual(
    progress.map((p) => p.done),
    Array.from({ length: T }, (_, i) => i + 1),
  );
  assert.ok(progress.every((p) => p.stage === 'quality' && p.total === T));

  const again = await evaluateCheckpoint(base);
  assert.equal(again.quality!.frechetDistance, q.frechetDistance, 'the same seed gives the same numbers');
  const other = await evaluateCheckpoint({ ...base, seed: 4 });
  assert.notEqual(other.quality!.frechetDistance, q.frechetDistance);

  const text = evaluateText(r);
  assert.match(text, /^sample quality of 4 samples \(DDIM 16 steps, seed 3\), judged by .*mnist\.safetensors$/m);
  assert.match(text, /^ {2}\(a classifier of mnist, 98\.\d % accurate on its held-out images\)$/m);
  assert.match(text, new RegExp(`^ {2}Fréchet distance {2}${q.frechetDistance.toFixed(2)} `, 'm'));
  assert.match(text, /^ {4}9 +\d+\.\d %/m);
  assert.doesNotMatch(text, /bits\/dim|forward passes|undefined/);
});

test('the classifier follows the checkpoint data; data without one, or n < 2, is refused before any work', async () => {
  await initBackend('wasm');
  if (!fs.existsSync(ckpt)) saveTinyCheckpoint(ckpt, T);
  const w = loadWeights(ckpt, true);
  try {
    assert.match(qualityClassifierFile(w, { n: 2, data: 'mnist' }), /classifiers[/\\]mnist\.safetensors$/);
    w.meta.data = { source: 'idx:/srv/fashion-mnist/train-images-idx3-ubyte.gz', size: 60000 };
    assert.match(
      qualityClassifierFile(w, { n: 2, data: 'mnist' }),
      /fashion-mnist\.safetensors$/,
      'the checkpoint wins',
    );
    w.meta.data = { source: 'cifar10:/data/cifar', size: 50000 };
    assert.throws(
      () => qualityClassifierFile(w, { n: 2, data: 'mnist' }),
      (e: Error) =>
        classifyError(e) === 'bad-input' &&
        /^quality: no sample-quality classifier exists for the data 'cifar10:\/data\/cifar': classifiers are shipped for mnist and Fashion-MNIST/.test(
          e.message,
        ),
    );
    w.meta.data = undefined;
    assert.throws(() => qualityClassifierFile(w, { n: 1, data: 'mnist' }), /needs at least 2 images/);
  } finally {
    disposeWeights(w);
  }
  await assert.rejects(
    evaluateCheckpoint({
      checkpoint: ckpt,
      data: 'cifar10:/nowhere',
      n: 4,
      bpd: true,
      quality: true,
      seed: 0,
      ema: true,
      workers: 1,
    }),
    (e: Error) => classifyError(e) === 'bad-input' && /no sample-quality classifier exists/.test(e.message),
  );
});
