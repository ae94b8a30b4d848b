// The cifar10 preset (35.7M parameters, ~140 MB of weights) built and run forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { UNet, presetConfig } from '../../sidecar/ddpm/unet.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

test('the cifar10 preset runs forward, and a fresh model outputs exactly zero (zero-initialised conv_out)', async () => {
  await initBackend('auto');
  const model = UNet.create(presetConfig('cifar10'), new Rng(1));
  assert.equal(model.numParams, 35_746_307);
  const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = model.predictEps(x, [999]);
  assert.deepEqual(y.shape, [1, 32, 32, 3]);
  assert.equal((await tf.max(tf.abs(y)).data())[0], 0);
  tf.dispose([x, y]);
  model.dispose();
});
