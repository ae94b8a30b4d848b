// Sampling loops (DDPM, DDIM), trajectories, cancellation, determinism, leaks, and interpolation from t.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import {
  runSampler,
  interpolate,
  samplingTimesteps,
  INTERPOLATION_BATCH,
  type EpsModel,
  type StepInfo,
} from '../../sidecar/ddpm/sampler.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { asEps, tinyModel } from '../helpers/tinyModel.ts';

test('timestep sequences: DDPM T−1…0, DDIM on the leading grid, and from an intermediate t', () => {
  assert.deepEqual(samplingTimesteps(1000, { sampler: 'ddpm' }).slice(0, 3), [999, 998, 997]);
  assert.equal(samplingTimesteps(1000, { sampler: 'ddpm' }).length, 1000);
  assert.deepEqual(
    samplingTimesteps(1000, { sampler: 'ddim', steps: 10 }),
    [900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
  );
  assert.deepEqual(samplingTimesteps(1000, { sampler: 'ddpm' }, 3), [3, 2, 1, 0]);
  assert.deepEqual(samplingTimesteps(1000, { sampler: 'ddim', steps: 10 }, 500), [500, 400, 300, 200, 100, 0]);
  assert.deepEqual(samplingTimesteps(1000, { sampler: 'ddim', steps: 10 }, 450), [450, 400, 300, 200, 100, 0]);
  assert.throws(() => samplingTimesteps(1000, { sampler: 'ddpm' }, 1000), /start timestep/);
});

test('DDIM sampling: one callback per step in order, x_t and x̂0 frames when asked, images in range', async () => {
  await initBackend('auto');
  const model = tinyModel(1);
  const diffusion = new GaussianDiffusion(makeSchedule());
  const seen: StepInfo[] = [];
  const frameShapes: number[][] = [];
  const x0 = await runSampler(asEps(model), diffusion, [2, 16, 16, 1], {
    sampler: 'ddim',
    steps: 10,
    seed: 1,
    wantTensors: (i, total) => i % 3 === 0 || i === total - 1,
    onStep: async (info) => {
      seen.push({ ...info, xt: undefined, predX0: undefined });
      if (info.xt && info.predX0) {
        frameShapes.push(info.xt.shape, info.predX0.shape);
        const p = await info.predX0.data();
        assert.ok(
          p.every((v) => v >= -1 && v <= 1),
          'x̂0 is clipped to [−1, 1]',
        );
      }
    },
  });
  assert.deepEqual(x0.shape, [2, 16, 16, 1]);
  assert.deepEqual(
    seen.map((s) => s.t),
    [900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
  );
  assert.deepEqual(
    seen.map((s) => s.tPrev),
    [800, 700, 600, 500, 400, 300, 200, 100, 0, -1],
  );
  assert.ok(seen.every((s) => s.total === 10));
  assert.equal(frameShapes.length, 2 * 4); // steps 0, 3, 6 and 9 (the last)
  x0.dispose();
  model.dispose();
});

test('DDPM sampling is deterministic per seed and the tensor count is flat from step 10 to step 60', async () => {
  await initBackend('auto');
  const model = tinyModel(2);
  const diffusion = new GaussianDiffusion(makeSchedule({ T: 80 }));
  const counts = new Map<number, number>();
  const run = (seed: number, record = false) =>
    runSampler(asEps(model), diffusion, [2, 16, 16, 1], {
      sampler: 'ddpm',
      seed,
      onStep: (i) => {
        if (record && (i.index === 10 || i.index === 60)) counts.set(i.index, tf.memory().numTensors);
      },
    });
  const before = tf.memory().numTensors;
  const a = await run(7, true);
  assert.equal(counts.get(10), counts.get(60));
  const b = await run(7);
  const c = await run(8);
  assert.deepEqual(Array.from(await a.data()), Array.from(await b.data()));
  assert.notDeepEqual(Array.from(await a.data()), Array.from(await c.data()));
  tf.dispose([a, b, c]);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test('cancellation stops within one step, rejects with AbortError, and releases every tensor', async () => {
  await initBackend('auto');
  const model = tinyModel(3);
  const diffusion = new GaussianDiffusion(makeSchedule());
  const ac = new AbortController();
  const before = tf.memory().numTensors;
  let steps = 0;
  await assert.rejects(
    runSampler(asEps(model), diffusion, [1, 16, 16, 1], {
      sampler: 'ddpm',
      seed: 1,
      signal: ac.signal,
      onStep: (i) => {
        steps = i.index + 1;
        if (i.index === 3) ac.abort();
      },
    }),
    (e: Error) => e.name === 'AbortError',
  );
  assert.equal(steps, 4);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test('interpolation diffuses to t, mixes with λ and denoises from t (checked with ε_θ = 0 and deterministic DDIM)', async () => {
  await initBackend('auto');
  const diffusion = new GaussianDiffusion(makeSchedule());
  const zeroEps: EpsModel = (x) => tf.zerosLike(x);
  const x1 = tf.fill([1, 4, 4, 1], 0.5) as tf.Tensor4D;
  const x2 = tf.fill([1, 4, 4, 1], -0.25) as tf.Tensor4D;
  const t = 500;
  const lambdas = [0, 0.5, 1];
  const out = await interpolate(zeroEps, diffusion, x1, x2, t, lambdas, {
    sampler: 'ddim',
    steps: 50,
    eta: 0,
    clip: false,
    seed: 3,
  });
  assert.equal(out.length, 3);
  // With ε_θ = 0, DDIM from t gives x_0 = x̄_t/√ᾱ_t exactly; a run restarted at T−1 would not.
  const rng = new Rng(3);
  const e1 = tf.randomNormal([1, 4, 4, 1], 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const e2 = tf.randomNormal([1, 4, 4, 1], 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const sa = makeSchedule().f64.sqrt_alphas_cumprod[t];
  for (let i = 0; i < lambdas.length; i++) {
    const mix = diffusion.interpolateLatents(x1, x2, t, e1, e2, lambdas[i]);
    const want = await mix.data();
    const got = await out[i].data();
    for (let k = 0; k < got.length; k++)
      assert.ok(
        Math.abs(got[k] - want[k] / sa) < 1e-4 * Math.max(1, Math.abs(got[k])),
        `λ=${lambdas[i]} [${k}] ${got[k]} vs ${want[k] / sa}`,
      );
    mix.dispose();
  }
  tf.dispose([...out, e1, e2]);

  // With a real network: same seed → same strip; endpoints have the input shape.
  const model = tinyModel(4);
  const a1 = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 1) as tf.Tensor4D;
  const a2 = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 2) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const s1 = await interpolate(asEps(model), diffusion, a1, a2, 300, [0, 0.5, 1], {
    sampler: 'ddim',
    steps: 20,
    seed: 9,
  });
  const s2 = await interpolate(asEps(model), diffusion, a1, a2, 300, [0, 0.5, 1], {
    sampler: 'ddim',
    steps: 20,
    seed: 9,
  });
  for (let i = 0; i < 3; i++) assert.deepEqual(Array.from(await s1[i].data()), Array.from(await s2[i].data()));
  assert.deepEqual(s1[0].shape, [1, 16, 16, 1]);
  tf.dispose([...s1, ...s2]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x1, x2, a1, a2]);
  model.dispose();
});

test('interpolation denoises all λ as one batch with the same noise for each: each image equals its own run at batch 1', async () => {
  await initBackend('wasm');
  const diffusion = new GaussianDiffusion(makeSchedule());
  const model = tinyModel(6);
  const a1 = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 4) as tf.Tensor4D;
  const a2 = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 5) as tf.Tensor4D;
  const t = 12;
  const seed = 31;
  // More λ than one run takes, so that the strip is denoised in two runs; ancestral DDPM draws z at every step.
  const lambdas = Array.from({ length: INTERPOLATION_BATCH + 2 }, (_, i) => i / (INTERPOLATION_BATCH + 1));
  const progress: [number, number][] = [];
  const before = tf.memory().numTensors;
  const strip = await interpolate(asEps(model), diffusion, a1, a2, t, lambdas, {
    sampler: 'ddpm',
    seed,
    onProgress: (s, total) => void progress.push([s, total]),
  });
  assert.equal(tf.memory().numTensors, before + lambdas.length);
  assert.equal(strip.length, lambdas.length);
  // 13 steps (t = 12 … 0) per run, two runs.
  assert.deepEqual(
    progress,
    Array.from({ length: 26 }, (_, i) => [i, 26]),
  );
  // The reference: each λ on its own, as a batch of one, with the interpolation's noise (same generator order).
  const rng = new Rng(seed);
  const e1 = tf.randomNormal([1, 16, 16, 1], 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const e2 = tf.randomNormal([1, 16, 16, 1], 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const denoiseSeed = rng.seed();
  for (const i of [0, 7, INTERPOLATION_BATCH, INTERPOLATION_BATCH + 1]) {
    const xt = diffusion.interpolateLatents(a1, a2, t, e1, e2, lambdas[i]);
    const alone = await runSampler(
      asEps(model),
      diffusion,
      [1, 16, 16, 1],
      { sampler: 'ddpm', seed: denoiseSeed },
      { x: xt, t },
    );
    const want = await alone.data();
    const got = await strip[i].data();
    let worst = 0;
    for (let k = 0; k < got.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]));
    assert.ok(worst < 1e-5, `λ #${i}: differs from its own run by ${worst}`);
    tf.dispose([xt, alone]);
  }
  await assert.rejects(
    runSampler(asEps(model), diffusion, [3, 16, 16, 1], { sampler: 'ddim', steps: 2, seed: 1, noiseBatch: 2 }),
    /noiseBatch must divide the batch of 3, got 2/,
  );
  await assert.rejects(
    interpolate(asEps(model), diffusion, a1, a2, t, [0, 1.5], { sampler: 'ddim', seed: 1 }),
    /interpolation λ must be in \[0, 1\], got 1.5/,
  );
  tf.dispose([...strip, a1, a2, e1, e2]);
  model.dispose();
});
