// Data-parallel training on worker threads (sidecar/ddpm/gradientPool.ts): the same step as computing the
// micro-batches one after another on this thread, with dropout and flips on, and nothing leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Trainer, type TrainConfig } from '../../sidecar/ddpm/train.ts';
import { presetConfig, UNet } from '../../sidecar/ddpm/unet.ts';

async function run(train: Partial<TrainConfig>, steps: number) {
  const model = UNet.create(presetConfig('tiny', { dropout: 0.1 }), new Rng(5));
  const trainer = new Trainer(model, new GaussianDiffusion(makeSchedule()), { lr: 1e-3, warmupSteps: 0, randomFlip: true, ...train }, 77);
  const x0 = tf.randomUniform([6, 16, 16, 1], -1, 1, 'float32', 3) as tf.Tensor4D;
  const losses: number[] = [];
  const counts: number[] = [];
  for (let s = 0; s < steps; s++) {
    losses.push((await trainer.trainStep(x0)).loss);
    counts.push(tf.memory().numTensors);
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, v] of model.params) weights.set(name, (await v.data()) as Float32Array);
  const ema = trainer.emaParams();
  const emaConv = (await ema.get('down.0.res.0.conv1.weight')!.data()) as Float32Array;
  tf.dispose([...ema.values()]);
  const rng = trainer.rngState();
  trainer.dispose();
  model.dispose();
  x0.dispose();
  return { losses, counts, weights, emaConv, rng };
}

test('2 and 3 threads give the same steps as the same micro-batches on one thread (dropout, flips, EMA, RNG)', async () => {
  await initBackend('wasm');
  const serial2 = await run({ microBatch: 3 }, 4);
  const parallel2 = await run({ workers: 2 }, 4); // 6 images → 2 micro-batches of 3, one per thread
  const serial3 = await run({ microBatch: 2 }, 3);
  const parallel3 = await run({ workers: 3 }, 3);
  for (const [a, b, label] of [
    [serial2, parallel2, '2 threads'],
    [serial3, parallel3, '3 threads'],
  ] as const) {
    assert.deepEqual(b.rng, a.rng, `${label}: the generator drew differently`);
    for (let i = 0; i < a.losses.length; i++) {
      assert.ok(Math.abs(a.losses[i] - b.losses[i]) <= 1e-5 * Math.abs(a.losses[i]), `${label} step ${i}: ${a.losses[i]} vs ${b.losses[i]}`);
    }
    let worst = 0;
    for (const [name, w] of a.weights) {
      const v = b.weights.get(name)!;
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]));
    }
    assert.ok(worst < 1e-5, `${label}: weights differ by ${worst}`);
    for (let i = 0; i < a.emaConv.length; i++) assert.ok(Math.abs(a.emaConv[i] - b.emaConv[i]) < 1e-5, `${label}: EMA differs at ${i}`);
  }
  // The serial and parallel runs really differ in what they computed where: dropout is on, so a wrong seed per
  // micro-batch would show up in the losses above. And the main thread's tensor count is flat across steps.
  assert.equal(parallel2.counts[3], parallel2.counts[1], `tensors: ${parallel2.counts}`);
});

test('workers are validated; a GPU backend would ignore them (only wasm and cpu use threads)', () => {
  const model = UNet.create(presetConfig('tiny'), new Rng(1));
  const diffusion = new GaussianDiffusion(makeSchedule());
  assert.throws(() => new Trainer(model, diffusion, { workers: 0 }, 1), /workers must be an integer in 1\.\.64/);
  assert.throws(() => new Trainer(model, diffusion, { workers: 1.5 }, 1), /workers must be an integer in 1\.\.64/);
  model.dispose();
});

test("workers: 'auto' uses one thread per core (at most 8, one per 2 images) for models of 500k parameters or more", async () => {
  const { resolveWorkers } = await import('../../sidecar/ddpm/gradientPool.ts');
  assert.equal(resolveWorkers('auto', 16, 1_062_497, 2), 2);
  assert.equal(resolveWorkers(undefined, 16, 1_062_497, 16), 8);
  assert.equal(resolveWorkers('auto', 6, 35_746_307, 16), 3);
  assert.equal(resolveWorkers('auto', 16, 176_849, 16), 1, 'tiny: threads cost more than they give');
  assert.equal(resolveWorkers('auto', 2, 35_746_307, 16), 1);
  assert.equal(resolveWorkers(5, 16, 10, 2), 5);
  assert.throws(() => resolveWorkers(0, 16, 10), /workers must be an integer in 1\.\.64 or 'auto'/);
});
