// Data parallelism on worker threads (sidecar/parallel/workerPool.ts). Training: the same step as computing the
// micro-batches one after another on this thread, with dropout and flips on, and nothing leaks. Sampling: the same
// images, bit for bit, as on one thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { OPTIMIZER_CHUNK_ELEMENTS, Trainer, type TrainConfig } from '../../sidecar/ddpm/train.ts';
import { inferenceEps, presetConfig, UNet } from '../../sidecar/ddpm/unet.ts';
import { sampleImages } from '../../sidecar/jobs/sample.ts';
import { ParallelTrainer } from '../../sidecar/parallel/trainer.ts';
import {
  ModelWorkerPool,
  resolveSamplingWorkers,
  resolveWorkers,
  threadedEpsModel,
} from '../../sidecar/parallel/workerPool.ts';

async function run(train: Partial<TrainConfig>, steps: number, previewAfter = -1, ch = presetConfig('tiny').ch) {
  const model = UNet.create(presetConfig('tiny', { dropout: 0.1, ch }), new Rng(5));
  const trainer = new ParallelTrainer(
    model,
    new GaussianDiffusion(makeSchedule()),
    { lr: 1e-3, warmupSteps: 0, randomFlip: true, ...train },
    77,
  );
  const x0 = tf.randomUniform([6, 16, 16, 1], -1, 1, 'float32', 3) as tf.Tensor4D;
  const losses: number[] = [];
  const counts: number[] = [];
  let preview: { images: Float32Array; threads: number } | null = null;
  for (let s = 0; s < steps; s++) {
    losses.push((await trainer.trainStep(x0)).loss);
    counts.push(tf.memory().numTensors);
    if (s === previewAfter) {
      // As the training job's preview does: the EMA weights, on the trainer's threads when it has them. This loads
      // the EMA into the workers; the next step must load the trained weights again.
      const ema = trainer.emaParams();
      const pool = trainer.workerPool;
      preview = await sampleImages(
        ema,
        model.config,
        {},
        { n: 3, sampler: 'ddim', steps: 4, eta: 1, seed: 8, ...(pool ? { pool } : { workers: 1 }) },
      );
      tf.dispose([...ema.values()]);
    }
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
  return { losses, counts, weights, emaConv, rng, preview };
}

test('2 and 3 threads give the same steps as the same micro-batches on one thread (dropout, flips, EMA, RNG)', async () => {
  await initBackend('wasm');
  const serial2 = await run({ microBatch: 3 }, 4, 1);
  const parallel2 = await run({ workers: 2 }, 4, 1); // 6 images → 2 micro-batches of 3, one per thread
  const serial3 = await run({ microBatch: 2 }, 3);
  const parallel3 = await run({ workers: 3 }, 3);
  for (const [a, b, label] of [
    [serial2, parallel2, '2 threads'],
    [serial3, parallel3, '3 threads'],
  ] as const) {
    assert.deepEqual(b.rng, a.rng, `${label}: the generator drew differently`);
    for (let i = 0; i < a.losses.length; i++) {
      assert.ok(
        Math.abs(a.losses[i] - b.losses[i]) <= 1e-5 * Math.abs(a.losses[i]),
        `${label} step ${i}: ${a.losses[i]} vs ${b.losses[i]}`,
      );
    }
    let worst = 0;
    for (const [name, w] of a.weights) {
      const v = b.weights.get(name)!;
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]));
    }
    assert.ok(worst < 1e-5, `${label}: weights differ by ${worst}`);
    for (let i = 0; i < a.emaConv.length; i++)
      assert.ok(Math.abs(a.emaConv[i] - b.emaConv[i]) < 1e-5, `${label}: EMA differs at ${i}`);
  }
  // The serial and parallel runs really differ in what they computed where: dropout is on, so a wrong seed per
  // micro-batch would show up in the losses above. And the main thread's tensor count is flat across steps.
  assert.equal(parallel2.counts[3], parallel2.counts[1], `tensors: ${parallel2.counts}`);
  // The preview after step 2 ran on the trainer's two threads and drew what one thread draws from the same EMA
  // (equal up to the EMA's own float differences); the steps after it matched, so the workers got their weights back.
  assert.equal(serial2.preview?.threads, 1);
  assert.equal(parallel2.preview?.threads, 2);
  const [pa, pb] = [serial2.preview!.images, parallel2.preview!.images];
  assert.equal(pb.length, 3 * 16 * 16);
  for (let i = 0; i < pa.length; i++) assert.ok(Math.abs(pa[i] - pb[i]) < 1e-4, `preview [${i}]: ${pa[i]} vs ${pb[i]}`);
});

test('a model of several optimizer chunks: each worker gradient slice lands in its own chunk', async () => {
  await initBackend('wasm');
  const ch = 64; // 2.8M parameters: two chunks of the flat optimizer state
  const probe = UNet.create(presetConfig('tiny', { ch }), new Rng(1));
  assert.ok(probe.numParams > OPTIMIZER_CHUNK_ELEMENTS, `${probe.numParams} parameters`);
  probe.dispose();
  const serial = await run({ microBatch: 3 }, 2, -1, ch);
  const parallel = await run({ workers: 2 }, 2, -1, ch);
  let worst = 0;
  for (const [name, w] of serial.weights) {
    const v = parallel.weights.get(name)!;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]));
  }
  assert.ok(worst < 1e-5, `weights differ by ${worst}`);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(serial.losses[i] - parallel.losses[i]) <= 1e-5 * serial.losses[i]);
});

test('workers are validated; a GPU backend would ignore them (only wasm and cpu use threads)', () => {
  const model = UNet.create(presetConfig('tiny'), new Rng(1));
  const diffusion = new GaussianDiffusion(makeSchedule());
  assert.throws(() => new Trainer(model, diffusion, { workers: 0 }, 1), /workers must be an integer in 1\.\.64/);
  assert.throws(() => new Trainer(model, diffusion, { workers: 1.5 }, 1), /workers must be an integer in 1\.\.64/);
  model.dispose();
});

test("workers: 'auto' uses one thread per core (at most 8, one per 2 images) for models of 500k parameters or more", async () => {
  assert.equal(resolveWorkers('auto', 16, 1_062_497, 2), 2);
  assert.equal(resolveWorkers(undefined, 16, 1_062_497, 16), 8);
  assert.equal(resolveWorkers('auto', 6, 35_746_307, 16), 3);
  assert.equal(resolveWorkers('auto', 16, 176_849, 16), 1, 'tiny: threads cost more than they give');
  assert.equal(resolveWorkers('auto', 2, 35_746_307, 16), 1);
  assert.equal(resolveWorkers(5, 16, 10, 2), 5);
  assert.throws(() => resolveWorkers(0, 16, 10), /workers must be an integer in 1\.\.64 or 'auto'/);
});

test("sampling: 'auto' uses one thread per core (at most 8, one per image) for models of 500k parameters or more", () => {
  assert.equal(resolveSamplingWorkers('auto', 16, 1_062_497, 2), 2);
  assert.equal(resolveSamplingWorkers(undefined, 16, 1_062_497, 16), 8);
  assert.equal(
    resolveSamplingWorkers('auto', 3, 35_746_307, 16),
    3,
    'one image per thread is enough for a forward pass',
  );
  assert.equal(resolveSamplingWorkers('auto', 1, 35_746_307, 16), 1);
  assert.equal(resolveSamplingWorkers('auto', 16, 176_849, 16), 1, 'tiny: its layers are too small to gain');
  assert.equal(resolveSamplingWorkers(4, 2, 10, 2), 2, 'never more threads than images');
  assert.throws(() => resolveSamplingWorkers(65, 16, 10), /workers must be an integer in 1\.\.64 or 'auto'/);
});

test('sampling on 3 threads gives the same images and trajectory, bit for bit, as on one, and leaks nothing', async () => {
  await initBackend('wasm');
  const model = UNet.create(presetConfig('tiny'), new Rng(11));
  // 5 images over 3 threads: slices of 1, 2 and 2. DDIM with η = 1 draws noise at every step.
  const opts = { n: 5, sampler: 'ddim' as const, steps: 6, eta: 1, seed: 21, frames: 3, keepFrames: true };
  const one = await sampleImages(model.params, model.config, {}, { ...opts, workers: 1 });
  const before = tf.memory().numTensors;
  const warnings: string[] = [];
  const three = await sampleImages(
    model.params,
    model.config,
    {},
    { ...opts, workers: 3, onWarning: (m) => warnings.push(m) },
  );
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(warnings, []);
  assert.equal(one.threads, 1);
  assert.equal(three.threads, 3);
  assert.deepEqual(three.shape, [5, 16, 16, 1]);
  assert.deepEqual(Array.from(three.images), Array.from(one.images));
  assert.deepEqual(
    three.frames.map((f) => f.index),
    one.frames.map((f) => f.index),
  );
  three.frames.forEach((f, i) =>
    assert.deepEqual(Array.from(f.predX0), Array.from(one.frames[i].predX0), `frame ${i}`),
  );
  model.dispose();
});

test('a pool answers forward jobs with the slices of one forward pass, reloads changed weights, and fails loudly', async () => {
  await initBackend('wasm');
  const model = UNet.create(presetConfig('tiny'), new Rng(12));
  const names = [...model.params.keys()];
  const init = {
    backend: 'wasm' as const,
    config: model.config,
    schedule: makeSchedule().config,
    names,
    shapes: names.map((n) => model.params.get(n)!.shape),
  };
  const pool = await ModelWorkerPool.start(2, init);
  const x = tf.randomNormal([4, 16, 16, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
  const t = [0, 250, 500, 999];
  try {
    await assert.rejects(
      pool.forward([16, 16, 1], [{ x: new Float32Array(256), t: [1] }]),
      /setParams must be called before/,
    );
    await pool.setParams(model.params);
    const local = inferenceEps(model.params, model.config);
    const eps = threadedEpsModel(pool, local);
    const want = local(x, t);
    const got = await eps(x, t);
    assert.deepEqual(Array.from(await got.data()), Array.from(await want.data()));
    // New weights: the workers must use them, not the ones they loaded first.
    const other = UNet.create(presetConfig('tiny'), new Rng(13));
    await pool.setParams(other.params);
    const [wa, wb] = await pool.forward(
      [16, 16, 1],
      [
        { x: (await x.data()).slice(0, 256) as Float32Array, t: [0] },
        { x: (await x.data()).slice(256, 512) as Float32Array, t: [250] },
      ],
    );
    const ref = (await tf
      .tidy(() => other.predictEps(tf.slice(x, [0, 0, 0, 0], [2, -1, -1, -1]), [0, 250]))
      .data()) as Float32Array;
    assert.deepEqual([...wa, ...wb], Array.from(ref));
    // Wrong architecture, a job for a worker that doesn't exist, a stopped pool: clear errors, no hang.
    const wrong = UNet.create(presetConfig('tiny', { ch: presetConfig('tiny').ch * 2 }), new Rng(1));
    await assert.rejects(
      pool.setParams(wrong.params),
      /parameter '[^']+' has shape \[[\d,]+\] but the workers' model has \[[\d,]+\]/,
    );
    await assert.rejects(
      pool.forward(
        [16, 16, 1],
        [0, 1, 2].map(() => ({ x: new Float32Array(256), t: [1] })),
      ),
      /3 jobs for 2 workers/,
    );
    const pending = assert.rejects(
      pool.forward([16, 16, 1], [{ x: new Float32Array(256), t: [1] }]),
      /the model workers were stopped/,
    );
    await pool.dispose();
    await pending;
    await assert.rejects(
      pool.forward([16, 16, 1], [{ x: new Float32Array(256), t: [1] }]),
      /the model workers were stopped/,
    );
    tf.dispose([want, got]);
    other.dispose();
    wrong.dispose();
  } finally {
    x.dispose();
    await pool.dispose();
    model.dispose();
  }
});

test('a worker that cannot start is a clear error', async () => {
  await initBackend('wasm');
  const model = UNet.create(presetConfig('tiny'), new Rng(14));
  const names = [...model.params.keys()];
  await assert.rejects(
    ModelWorkerPool.start(2, {
      backend: 'no-such-backend' as 'wasm',
      config: model.config,
      schedule: makeSchedule().config,
      names,
      shapes: names.map((n) => model.params.get(n)!.shape),
    }),
    /a model worker failed to start: unknown backend 'no-such-backend'/,
  );
  model.dispose();
});
