// Batches split to fit wasm's 4 GiB heap (sidecar/parallel/wasmMemory.ts): the planned sizes, and that the estimates
// they come from bound what a training step really takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { microBatchSize, Trainer } from '../../sidecar/ddpm/train.ts';
import { countParams, paramSpecs, presetConfig, UNet } from '../../sidecar/ddpm/unet.ts';
import { ParallelTrainer } from '../../sidecar/parallel/trainer.ts';
import {
  activationElements,
  maxInferenceBatch,
  maxTrainingMicroBatch,
  WasmMemoryError,
} from '../../sidecar/parallel/wasmMemory.ts';

const paramsOf = (preset: string) => countParams(paramSpecs(presetConfig(preset)));

test('how many images one pass may take on wasm, per preset; other backends have no limit', () => {
  // cifar10 took at most 170 images in one forward pass (measured; 200 aborted the wasm module): passes of 83 leave room.
  assert.equal(maxInferenceBatch(presetConfig('cifar10'), 'wasm'), 83);
  assert.equal(maxInferenceBatch(presetConfig('mnist'), 'wasm'), 445);
  assert.equal(maxTrainingMicroBatch(presetConfig('cifar10'), paramsOf('cifar10'), 'wasm'), 12);
  assert.equal(maxTrainingMicroBatch(presetConfig('mnist'), paramsOf('mnist'), 'wasm'), 173);
  for (const backend of ['webgpu', 'tensorflow', 'cpu']) {
    assert.equal(maxInferenceBatch(presetConfig('cifar10'), backend), Infinity);
    assert.equal(maxTrainingMicroBatch(presetConfig('cifar10'), paramsOf('cifar10'), backend), Infinity);
  }
});

test('micro-batch size: as set, else one share per thread; under the limit with an even split', () => {
  assert.equal(microBatchSize(16, 1, 0), 16);
  assert.equal(microBatchSize(16, 2, 0), 8);
  assert.equal(microBatchSize(15, 2, 0), 8);
  assert.equal(microBatchSize(16, 2, 4), 4);
  assert.equal(microBatchSize(16, 2, 40), 16);
  assert.equal(microBatchSize(32, 2, 0, 12), 8, 'two micro-batches of 8 per thread, not 12 + 12 + 8');
  assert.equal(microBatchSize(32, 1, 0, 12), 11, '11 + 11 + 10');
  assert.equal(microBatchSize(32, 1, 20, 12), 12, 'a micro-batch that was set is capped too');
  assert.equal(microBatchSize(5, 1, 0, 1), 1);
});

test('the training estimate bounds the real wasm heap: measured growth per image stays under it', async () => {
  await initBackend('wasm');
  const config = presetConfig('mnist');
  const model = UNet.create(config, new Rng(2));
  // workers: 1 and microBatch: 0 → each step is one pass over the whole batch on this thread.
  const trainer = new Trainer(
    model,
    new GaussianDiffusion(makeSchedule()),
    { lr: 1e-4, warmupSteps: 0, workers: 1 },
    3,
  );
  // The heap only grows, so its size after a step is that step's high-water mark (once it exceeds all before it).
  const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  const stepAt = async (b: number) => {
    const x = tf.randomUniform([b, 28, 28, 1], -1, 1, 'float32', b) as tf.Tensor4D;
    await trainer.trainStep(x);
    x.dispose();
    return heap();
  };
  const h4 = await stepAt(4);
  const h16 = await stepAt(16);
  const perImage = (h16 - h4) / 12;
  const estimate = 14 * 4 * activationElements(config);
  assert.ok(perImage > 0.3 * estimate, `the heap grew ${perImage} bytes per image: the test measured nothing`);
  assert.ok(
    perImage <= estimate,
    `measured ${(perImage / 1e6).toFixed(1)} MB per image, estimated ${(estimate / 1e6).toFixed(1)} MB`,
  );
  assert.ok(h16 <= 9 * 4 * model.numParams + 16 * estimate + 64 * 1024 ** 2, `heap ${h16} bytes at batch 16`);
  trainer.dispose();
  model.dispose();
});

test('a model too large for even one image per pass is a clear error before anything runs', async () => {
  await initBackend('wasm');
  // The tiny preset's weights, but 1024×1024 images: ~3 GiB of activations per image in a forward pass.
  const config = presetConfig('tiny', { imageSize: 1024, attnResolutions: [] });
  const params = countParams(paramSpecs(config));
  assert.throws(
    () => maxInferenceBatch(config, 'wasm'),
    (e: Error) =>
      e instanceof WasmMemoryError &&
      /needs about 3\.0 GiB per image for a forward pass, more than the wasm backend's 4 GiB memory leaves for it \(2\.0 GiB\): use a GPU \(webgpu\) or the native backend/.test(
        e.message,
      ),
  );
  assert.throws(() => maxTrainingMicroBatch(config, params, 'wasm'), /GiB per image for a training step/);
  assert.equal(maxInferenceBatch(config, 'webgpu'), Infinity);
  // Through the trainer: the first step fails with that message, and the backend still works afterwards.
  const model = UNet.create(config, new Rng(1));
  const trainer = new ParallelTrainer(model, new GaussianDiffusion(makeSchedule()), { lr: 1e-4, warmupSteps: 0 }, 1);
  const x = tf.zeros([1, 1024, 1024, 1]) as tf.Tensor4D;
  await assert.rejects(trainer.trainStep(x), WasmMemoryError);
  assert.equal(trainer.step, 0);
  assert.deepEqual(Array.from(await tf.add(tf.scalar(1), 1).data()), [2]);
  tf.dispose(x);
  trainer.dispose();
  model.dispose();
});
