// The shipped MNIST model (models/mnist.safetensors) loads and samples: 4 images with DDIM-10 that look like digits
// (mostly dark background with some bright strokes), not noise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { sampleImages } from '../../sidecar/jobs/sample.ts';
import { paramSpecs, presetConfig } from '../../sidecar/ddpm/unet.ts';
import { repoRoot } from '../helpers/paths.ts';

test('models/mnist.safetensors: weights-only mnist preset that samples 4 digit-like images with DDIM-10', async () => {
  await initBackend('auto');
  const ck = loadCheckpoint(path.join(repoRoot, 'models', 'mnist.safetensors'));
  assert.equal(ck.meta.kind, 'weights');
  assert.equal(ck.meta.preset, 'mnist');
  assert.deepEqual(ck.meta.model, presetConfig('mnist'));
  assert.ok(ck.header.fileSize < 5 * 2 ** 20, `${ck.header.fileSize} bytes`);
  assert.ok(ck.header.tensors.every((t) => t.dtype === 'F16'));
  const weights = ck.groups.model!;
  assert.equal(weights.size, paramSpecs(ck.meta.model).length);
  const params = new Map([...weights].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  const r = await sampleImages(params, ck.meta.model, ck.meta.schedule, { n: 4, sampler: 'ddim', steps: 10, seed: 0 });
  tf.dispose([...params.values()]);
  assert.deepEqual(r.shape, [4, 28, 28, 1]);
  assert.ok(r.images.every((v) => v >= -1 && v <= 1));
  const fractions = Array.from({ length: 4 }, (_, i) => {
    const img = r.images.subarray(i * 784, (i + 1) * 784);
    return { dark: img.filter((v) => v < -0.5).length / 784, bright: img.filter((v) => v > 0.5).length / 784 };
  });
  // MNIST digits are ~80% background and ~10–20% stroke; noise would be ~25% / 25% (and a blank image 100% / 0%).
  const meanDark = fractions.reduce((a, f) => a + f.dark, 0) / 4;
  assert.ok(meanDark > 0.6, `only ${(meanDark * 100).toFixed(0)}% background on average: ${JSON.stringify(fractions)}`);
  for (const [i, f] of fractions.entries()) {
    assert.ok(f.dark > 0.4, `image ${i}: ${(f.dark * 100).toFixed(0)}% background`);
    assert.ok(f.bright > 0.03 && f.bright < 0.35, `image ${i}: ${(f.bright * 100).toFixed(0)}% bright pixels`);
  }
});
