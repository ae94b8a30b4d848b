// The training step: it is deterministic, it leaks nothing, and its pieces (warm-up, clipping, Adam, EMA, flips) do
// what the paper's recipe says. That it learns (a tiny model overfits 8 images) is in test/slow/trainOverfit.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import type { UNet } from '../../sidecar/ddpm/unet.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Trainer, learningRateAt, flipLeftRight, DEFAULT_TRAIN_CONFIG } from '../../sidecar/ddpm/train.ts';
import { setupTiny as setup, squares } from '../helpers/training.ts';

test('same seed → identical losses for 20 steps (with dropout and flips); another seed differs', async () => {
  await initBackend('auto');
  const x0 = squares();
  const run = async (seed: number) => {
    const { trainer, dispose } = setup(seed, { lr: 5e-4, warmupSteps: 10, randomFlip: true }, 0.1);
    const out: number[] = [];
    for (let s = 0; s < 20; s++) out.push((await trainer.trainStep(x0)).loss);
    dispose();
    return out;
  };
  const a = await run(3);
  const b = await run(3);
  const c = await run(4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  x0.dispose();
});

test('no tensor leak: the tensor count after training step 10 equals the count after step 60', async () => {
  await initBackend('auto');
  const { trainer, dispose } = setup(5, { randomFlip: true }, 0.1);
  const x0 = squares();
  let at10 = -1;
  for (let s = 1; s <= 60; s++) {
    await trainer.trainStep(x0);
    if (s === 10) at10 = tf.memory().numTensors;
  }
  assert.equal(tf.memory().numTensors, at10);
  x0.dispose();
  dispose();
});

test('learning-rate warm-up is linear to the base rate, then constant', () => {
  const c = { lr: 2e-4, warmupSteps: 5000 };
  assert.equal(learningRateAt(1, c), 2e-4 / 5000);
  assert.equal(learningRateAt(2500, c), 1e-4);
  assert.equal(learningRateAt(5000, c), 2e-4);
  assert.equal(learningRateAt(90000, c), 2e-4);
  assert.equal(learningRateAt(1, { lr: 1e-3, warmupSteps: 0 }), 1e-3);
  assert.deepEqual(
    [
      DEFAULT_TRAIN_CONFIG.lr,
      DEFAULT_TRAIN_CONFIG.adamBeta1,
      DEFAULT_TRAIN_CONFIG.adamBeta2,
      DEFAULT_TRAIN_CONFIG.adamEps,
      DEFAULT_TRAIN_CONFIG.gradClip,
      DEFAULT_TRAIN_CONFIG.emaDecay,
    ],
    [2e-4, 0.9, 0.999, 1e-8, 1.0, 0.9999],
  );
});

test('first step: gradient clipped to global norm, Adam moments, parameter update and EMA follow the formulas', async () => {
  await initBackend('auto');
  const clip = 0.05;
  const { model, trainer, dispose } = setup(6, {
    lr: 1e-3,
    warmupSteps: 0,
    gradClip: clip,
    emaDecay: 0.5,
    randomFlip: false,
  });
  const x0 = squares();
  const before = new Map([...model.params].map(([n, v]) => [n, tf.clone(v)]));
  const stats = await trainer.trainStep(x0);
  assert.ok(stats.gradNorm > clip, `the test needs a gradient above the clip (got ${stats.gradNorm})`);
  const { m, v } = trainer.adamMoments();
  // After one step m = (1−β1)·ĝ, v = (1−β2)·ĝ², with ĝ the clipped gradient: ‖ĝ‖ = clip.
  const norm = async (ts: Iterable<tf.Tensor>) => {
    const n = tf.tidy(() => tf.sqrt(tf.addN([...ts].map((t) => tf.sum(tf.square(t))))));
    const r = (await n.data())[0];
    n.dispose();
    return r;
  };
  const mNorm = await norm(m.values());
  assert.ok(Math.abs(mNorm - 0.1 * clip) < 1e-3 * 0.1 * clip, `‖m‖ = ${mNorm}, expected ${0.1 * clip}`);
  // Adam's first step moves every parameter with a nonzero gradient by lr·sign(g) (bias-corrected m/√v = ±1).
  const name = 'conv_in.weight';
  const emaParams = trainer.emaParams();
  const [p0, p1, mm, ema] = await Promise.all([
    before.get(name)!.data(),
    model.params.get(name)!.data(),
    m.get(name)!.data(),
    emaParams.get(name)!.data(),
  ]);
  for (let i = 0; i < p0.length; i++) {
    if (Math.abs(mm[i]) < 1e-9) continue;
    const step = p0[i] - p1[i];
    assert.ok(Math.abs(step - 1e-3 * Math.sign(mm[i])) < 1e-5, `update ${step} for m ${mm[i]}`);
    // EMA with decay 0.5: halfway between the old and the new weights.
    assert.ok(Math.abs(ema[i] - (p0[i] + p1[i]) / 2) < 1e-6);
  }
  const vNorm = await norm([...v.values()].map((t) => tf.sqrt(t)));
  assert.ok(Math.abs(vNorm - Math.sqrt(0.001) * clip) < 1e-3 * clip, `‖√v‖ = ${vNorm}`);
  tf.dispose([...before.values(), ...m.values(), ...v.values(), ...emaParams.values(), x0]);
  dispose();
});

test('random flips mirror exactly the flagged images', async () => {
  await initBackend('auto');
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 4, 1]);
  const y = flipLeftRight(x, [false, true]);
  assert.deepEqual(Array.from(await y.data()), [1, 2, 3, 4, 8, 7, 6, 5]);
  assert.throws(() => flipLeftRight(x, [true]), /1 flip flags for 2 images/);
  tf.dispose([x, y]);
});

test('invalid training configs are rejected', () => {
  const diffusion = new GaussianDiffusion(makeSchedule());
  assert.throws(() => new Trainer(null as unknown as UNet, diffusion, { lr: -1 }, 1), /lr must be > 0/);
  assert.throws(
    () => new Trainer(null as unknown as UNet, diffusion, { emaDecay: 1 }, 1),
    /emaDecay must be in \[0, 1\)/,
  );
});

test('micro-batching (gradient accumulation) gives the full-batch step: same losses and weights', async () => {
  await initBackend('auto');
  const x0 = squares();
  const run = async (microBatch: number) => {
    const { model, trainer, dispose } = setup(11, { lr: 1e-3, warmupSteps: 0, randomFlip: true, microBatch });
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) losses.push((await trainer.trainStep(x0)).loss);
    const w = await model.params.get('down.0.res.0.conv1.weight')!.data();
    dispose();
    return { losses, w };
  };
  const full = await run(0);
  const micro = await run(3); // 8 images as 3 + 3 + 2
  for (let i = 0; i < 3; i++)
    assert.ok(
      Math.abs(full.losses[i] - micro.losses[i]) < 1e-5 * Math.abs(full.losses[i]) + 1e-6,
      `step ${i}: ${full.losses[i]} vs ${micro.losses[i]}`,
    );
  let worst = 0;
  for (let i = 0; i < full.w.length; i++) worst = Math.max(worst, Math.abs(full.w[i] - micro.w[i]));
  assert.ok(worst < 1e-5, `weights differ by ${worst}`);
  assert.throws(() => setup(1, { microBatch: -1 }), /microBatch must be an integer ≥ 0/);
  x0.dispose();
});
