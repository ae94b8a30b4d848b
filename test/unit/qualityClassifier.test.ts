// The shipped sample-quality classifiers (models/classifiers/) and the quality report (sidecar/quality/): each file
// is small, loads, and classifies held-out images as accurately as its metadata says; its shipped real statistics
// are those of the held-out images; the Fréchet distance between two disjoint halves of the held-out set is small and
// that of noise or smooth blobs is far larger; the report's histogram, coverage and confidence are what they should
// be for real images; images larger than the classifier's are centre-cropped; checkpoints find their classifier by
// their data source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { openDataset } from '../../sidecar/data/open.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import {
  classifierParamCount,
  classifyImages,
  defaultClassifierConfig,
  disposeClassifier,
  loadClassifier,
  type Classifier,
} from '../../sidecar/quality/classifier.ts';
import { featureStats, frechetDistance } from '../../sidecar/quality/frechet.ts';
import {
  classifierForSource,
  fitToClassifier,
  sampleQuality,
  COVERAGE_SHARE_OF_UNIFORM,
} from '../../sidecar/quality/sampleQuality.ts';
import { readAll } from '../../sidecar/quality/trainClassifier.ts';
import { repoRoot } from '../helpers/paths.ts';

const MNIST_CLASSIFIER = path.join(repoRoot, 'models', 'classifiers', 'mnist.safetensors');
const FASHION_CLASSIFIER = path.join(repoRoot, 'models', 'classifiers', 'fashion-mnist.safetensors');
const FASHION_TRAIN = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';
// CI installs Debian's dataset-fashion-mnist (.ci/run); a developer machine without it skips the Fashion-MNIST case.
const noFashion =
  !fs.existsSync(FASHION_TRAIN) &&
  !process.env.CI &&
  'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';

/** Accuracy on the first `n` held-out images (each split interleaves the classes, so any prefix has all of them). */
async function heldOutAccuracy(clf: Classifier, source: string, n: number) {
  const test = await openDataset(source, { imageSize: 28, channels: 1, split: 'test' });
  const idx = Array.from({ length: n }, (_, i) => i);
  const { probs } = await classifyImages(clf.params, clf.config, await test.read(idx), n);
  const labels = test.labels!(idx);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = probs.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
  }
  return correct / n;
}

function checkFile(clf: Classifier, minAccuracy: number) {
  const size = fs.statSync(clf.file).size;
  assert.ok(size < 600 * 1024, `${clf.file} is ${size} bytes`);
  assert.deepEqual(clf.config, defaultClassifierConfig());
  assert.equal(classifierParamCount(clf.config), 192_714);
  assert.ok(
    clf.meta.heldOutAccuracy >= minAccuracy,
    `recorded held-out accuracy ${clf.meta.heldOutAccuracy} < ${minAccuracy}`,
  );
  assert.equal(clf.stats.n, clf.meta.data.heldOutImages);
  assert.equal(clf.classes.length, 10);
}

test('models/classifiers/mnist.safetensors: < 600 KB, ≥ 98.5 % recorded, ≥ 97 % on 400 held-out digits here', async () => {
  await initBackend('auto');
  const clf = loadClassifier(MNIST_CLASSIFIER);
  try {
    checkFile(clf, 0.985);
    assert.equal(clf.meta.data.source, 'mnist');
    const acc = await heldOutAccuracy(clf, 'mnist', 400);
    assert.ok(acc >= 0.97, `accuracy ${acc} on 400 held-out digits`);
  } finally {
    disposeClassifier(clf);
  }
});

test(
  'models/classifiers/fashion-mnist.safetensors: < 600 KB, ≥ 89 % recorded, ≥ 86 % on 400 held-out images here',
  { skip: noFashion },
  async () => {
    await initBackend('auto');
    const clf = loadClassifier(FASHION_CLASSIFIER);
    try {
      checkFile(clf, 0.89);
      assert.match(clf.meta.data.source, /^idx:.*fashion/);
      assert.equal(clf.classes[9], 'Ankle boot');
      const acc = await heldOutAccuracy(clf, `idx:${FASHION_TRAIN}`, 400);
      assert.ok(acc >= 0.86, `accuracy ${acc} on 400 held-out images`);
    } finally {
      disposeClassifier(clf);
    }
  },
);

test('Fréchet distance in the MNIST classifier features: real vs real small, noise and smooth blobs far larger', async () => {
  await initBackend('auto');
  const clf = loadClassifier(MNIST_CLASSIFIER);
  try {
    const heldOut = await openDataset('mnist', { imageSize: 28, channels: 1, split: 'test' });
    const images = await readAll(heldOut);
    const n = heldOut.size;
    const { features } = await classifyImages(clf.params, clf.config, images, n);
    const f = clf.config.features;
    // The shipped statistics are those of the held-out digits (stored as float32).
    const all = featureStats(features, n, f);
    assert.ok(frechetDistance(all, clf.stats) < 1e-3, `${frechetDistance(all, clf.stats)}`);
    // Two disjoint halves (the split interleaves the classes, so each half has every digit equally).
    const half = Math.floor(n / 2);
    const a = featureStats(features.subarray(0, half * f), half, f);
    const b = featureStats(features.subarray(half * f, 2 * half * f), half, f);
    const realVsReal = frechetDistance(a, b);

    const rng = new Rng(7);
    const m = 256;
    const noise = new Float32Array(m * 784).map(() => rng.uniform() * 2 - 1);
    // Smooth blobs: one to three Gaussian bumps of random position and width on the background.
    const blobs = new Float32Array(m * 784).fill(-1);
    for (let i = 0; i < m; i++) {
      const k = 1 + rng.int(3);
      for (let j = 0; j < k; j++) {
        const [cy, cx, s] = [6 + rng.uniform() * 16, 6 + rng.uniform() * 16, 2 + rng.uniform() * 4];
        for (let y = 0; y < 28; y++)
          for (let x = 0; x < 28; x++) {
            const v = 2 * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s));
            blobs[i * 784 + y * 28 + x] = Math.min(1, blobs[i * 784 + y * 28 + x] + v);
          }
      }
    }
    const shape = (k: number) => [k, 28, 28, 1] as [number, number, number, number];
    const qReal = await sampleQuality(images.subarray(0, m * 784), shape(m), clf);
    const qNoise = await sampleQuality(noise, shape(m), clf);
    const qBlobs = await sampleQuality(blobs, shape(m), clf);
    const msg = `real/real ${realVsReal}, real ${qReal.frechetDistance}, noise ${qNoise.frechetDistance}, blobs ${qBlobs.frechetDistance}`;
    assert.ok(qNoise.frechetDistance > 20 * qReal.frechetDistance, msg);
    assert.ok(qBlobs.frechetDistance > 10 * qReal.frechetDistance, msg);
    assert.ok(qNoise.frechetDistance > 20 * realVsReal && qBlobs.frechetDistance > 10 * realVsReal, msg);

    // Real digits: confident, every class covered about equally.
    assert.equal(qReal.n, m);
    assert.ok(qReal.meanConfidence > 0.95, `confidence ${qReal.meanConfidence}`);
    assert.equal(qReal.coverage, 10);
    assert.equal(qReal.coverageThreshold, COVERAGE_SHARE_OF_UNIFORM / 10);
    assert.ok(Math.abs(qReal.classHistogram.reduce((s, v) => s + v, 0) - 1) < 1e-9);
    assert.ok(
      qReal.classHistogram.every((v) => v > 0.07 && v < 0.13),
      `${qReal.classHistogram}`,
    );
    assert.deepEqual(qReal.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const labels = heldOut.labels!(Array.from({ length: n }, (_, i) => i));
    // With the class each image is meant to be (as a conditional model's samples have): the agreement is the accuracy.
    const withLabels = await sampleQuality(images.subarray(0, m * 784), shape(m), clf, [...labels.subarray(0, m)]);
    assert.ok(withLabels.classAgreement! > 0.95, `agreement ${withLabels.classAgreement}`);
    assert.equal(withLabels.frechetDistance, qReal.frechetDistance);
    assert.equal(qReal.classAgreement, undefined);
    // One digit only: covered classes 1.
    const sevens = labels.reduce<number[]>((acc, l, i) => (l === 7 ? [...acc, i] : acc), []);
    const q7 = await sampleQuality(await heldOut.read(sevens), shape(sevens.length), clf);
    assert.equal(q7.coverage, 1);
    assert.ok(q7.classHistogram[7] > 0.95);
    assert.ok(q7.frechetDistance > 5 * qReal.frechetDistance, `${q7.frechetDistance}`);
  } finally {
    disposeClassifier(clf);
  }
});

test('fitToClassifier: 32×32 images are centre-cropped to 28×28; smaller images and other channels are refused', () => {
  const clf = { config: defaultClassifierConfig() } as Classifier;
  const big = new Float32Array(2 * 32 * 32).fill(-1);
  big[1 * 1024 + 2 * 32 + 2] = 0.5; // image 1, (2, 2) → (0, 0) after the crop
  big[1 * 1024 + 29 * 32 + 29] = 0.25; // (29, 29) → (27, 27)
  const out = fitToClassifier(big, [2, 32, 32, 1], clf);
  assert.equal(out.length, 2 * 784);
  assert.equal(out[784], 0.5);
  assert.equal(out[784 + 27 * 28 + 27], 0.25);
  assert.equal(out.filter((v) => v !== -1).length, 2);
  assert.throws(() => fitToClassifier(new Float32Array(16 * 16), [1, 16, 16, 1], clf), /too small/);
  assert.throws(() => fitToClassifier(new Float32Array(28 * 28 * 3), [1, 28, 28, 3], clf), /1-channel/);
  tf.disposeVariables();
});

test('classifierForSource: mnist and Fashion-MNIST IDX paths have classifiers, other data a clear error', () => {
  assert.equal(classifierForSource('mnist').file, MNIST_CLASSIFIER);
  assert.equal(classifierForSource(`idx:${FASHION_TRAIN}`).file, FASHION_CLASSIFIER);
  assert.equal(classifierForSource('idx:/data/Fashion-MNIST/train-images-idx3-ubyte').dataset, 'fashion-mnist');
  assert.throws(
    () => classifierForSource('cifar10:/data/cifar'),
    /no sample-quality classifier exists for the data 'cifar10/,
  );
  assert.throws(() => classifierForSource('idx:/data/kmnist/train-images-idx3-ubyte'), /mnist and Fashion-MNIST/);
  assert.throws(() => classifierForSource(undefined), /does not name its data/);
});
