// The paper's CIFAR-10 model (35.7M parameters) trains on wasm, whose heap is capped at 4 GiB and never shrinks:
// optimizer temporaries are freed chunk by chunk, and micro-batching bounds activation memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { UNet, presetConfig } from '../../sidecar/ddpm/unet.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Trainer } from '../../sidecar/ddpm/train.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

test('cifar10 preset: training steps at batch 4 (micro-batches of 2) fit in the wasm heap with room to spare', async () => {
  const report = await initBackend('wasm');
  assert.equal(report.name, 'wasm');
  const model = UNet.create(presetConfig('cifar10'), new Rng(1));
  const trainer = new Trainer(model, new GaussianDiffusion(makeSchedule()), { warmupSteps: 0, microBatch: 2 }, 2);
  const x0 = tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  const first = await trainer.trainStep(x0);
  const tensors = tf.memory().numTensors;
  const second = await trainer.trainStep(x0);
  assert.ok(Number.isFinite(first.loss) && Number.isFinite(second.loss));
  assert.ok(first.gradNorm > 0);
  assert.equal(tf.memory().numTensors, tensors);
  // Between steps exactly the weights, their EMA and Adam's two moments stay: 4 × 143 MB, and nothing else of that
  // size (the initial zero moments once stayed alive behind their variables).
  const paramBytes = [...model.params.values()].reduce((n, p) => n + p.size * 4, 0);
  const between = tf.memory().numBytes - x0.size * 4;
  assert.ok(
    between >= 4 * paramBytes && between < 4 * paramBytes + 2 ** 20,
    `${between} bytes live between steps; 4 × weights = ${4 * paramBytes}`,
  );
  const heap = heapBytes();
  assert.ok(heap < 3 * 2 ** 30, `wasm heap ${(heap / 2 ** 20).toFixed(0)} MB`);
  x0.dispose();
  trainer.dispose();
  model.dispose();
});
