// SDEdit (Meng et al. 2022): strength 0 returns the guide, strength 1 is the sampler itself (same seed, same images),
// in between the run starts at t₀ = strength·T from q(x_{t₀} | x_0); determinism and tensor counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { runSampler, type EpsModel, type SamplerOptions } from '../../sidecar/ddpm/sampler.ts';
import { sdedit, sdeditStart, sdeditTimesteps } from '../../sidecar/ddpm/sdedit.ts';
import { tinyModel } from '../helpers/tinyModel.ts';

test('t₀ = round(strength·T) and the timesteps each sampler visits from it', () => {
  assert.equal(sdeditStart(1000, 0), 0);
  assert.equal(sdeditStart(1000, 0.5), 500);
  assert.equal(sdeditStart(1000, 1), 1000);
  assert.equal(sdeditStart(50, 0.31), 16);
  assert.throws(() => sdeditStart(1000, 1.5), /strength must be in \[0, 1\]/);
  assert.deepEqual(sdeditTimesteps(1000, 0, { sampler: 'ddpm' }), []);
  assert.deepEqual(sdeditTimesteps(1000, 0.004, { sampler: 'ddpm' }), [3, 2, 1, 0]);
  assert.equal(sdeditTimesteps(1000, 0.5, { sampler: 'ddpm' }).length, 500);
  // DDIM: x_{t₀} first, then the grid below it; strength 1 is the sampler's whole grid.
  assert.deepEqual(
    sdeditTimesteps(1000, 0.5, { sampler: 'ddim', steps: 10, spacing: 'trailing' }),
    [499, 399, 299, 199, 99],
  );
  assert.deepEqual(
    sdeditTimesteps(1000, 1, { sampler: 'ddim', steps: 10, spacing: 'trailing' }),
    [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
  );
});

test('strength 0 returns the guide (no model call); strength 1 gives the sampler’s images for the same seed', async () => {
  await initBackend('auto');
  const model = tinyModel(1);
  let calls = 0;
  const eps: EpsModel = (x, t) => {
    calls++;
    return model.predictEps(x, t);
  };
  const diffusion = new GaussianDiffusion(makeSchedule({ T: 60 }));
  const guide = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 3) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const same = await sdedit(eps, diffusion, guide, 3, 0, { sampler: 'ddpm', seed: 1 });
  assert.equal(calls, 0);
  assert.deepEqual(same.shape, [3, 16, 16, 1]);
  const g = await guide.data();
  const s = await same.data();
  for (let k = 0; k < 3; k++) assert.deepEqual(Array.from(s.slice(k * 256, (k + 1) * 256)), Array.from(g));
  same.dispose();
  for (const opts of [
    { sampler: 'ddpm', seed: 5 },
    { sampler: 'ddim', steps: 10, eta: 1, spacing: 'trailing', seed: 6 },
  ] as SamplerOptions[]) {
    const edit = await sdedit(eps, diffusion, guide, 2, 1, opts);
    const sampled = await runSampler(eps, diffusion, [2, 16, 16, 1], opts);
    assert.deepEqual(Array.from(await edit.data()), Array.from(await sampled.data()), opts.sampler);
    tf.dispose([edit, sampled]);
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(guide);
  model.dispose();
});

test('in between: the run starts from q(x_{t₀} | guide) at t₀ − 1, one model call per step; same seed, same edits', async () => {
  await initBackend('auto');
  const model = tinyModel(2);
  const diffusion = new GaussianDiffusion(makeSchedule({ T: 100 }));
  const guide = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 7) as tf.Tensor4D;
  const ts: number[] = [];
  const opts: SamplerOptions = { sampler: 'ddpm', seed: 9, onStep: (s) => void ts.push(s.t) };
  const a = await sdedit((x, t) => model.predictEps(x, t), diffusion, guide, 2, 0.3, opts);
  assert.deepEqual(
    ts,
    Array.from({ length: 30 }, (_, i) => 29 - i),
  );
  const b = await sdedit((x, t) => model.predictEps(x, t), diffusion, guide, 2, 0.3, { ...opts, onStep: undefined });
  assert.deepEqual(Array.from(await a.data()), Array.from(await b.data()));
  // With ε_θ = 0 and deterministic DDIM from t₀, x_0 = x_{t₀}/√ᾱ: the guide plus its noise, scaled back.
  const zero: EpsModel = (x) => tf.zerosLike(x);
  const c = await sdedit(zero, diffusion, guide, 1, 0.3, {
    sampler: 'ddim',
    steps: 10,
    eta: 0,
    clip: false,
    seed: 4,
  });
  const noise = tf.randomNormal([1, 16, 16, 1], 0, 1, 'float32', new Rng(4).seed()) as tf.Tensor4D;
  const sched = makeSchedule({ T: 100 }).f64;
  const [got, gd, z] = [await c.data(), await guide.data(), await noise.data()];
  const k = 29;
  for (let i = 0; i < got.length; i++) {
    const want = gd[i] + (sched.sqrt_one_minus_alphas_cumprod[k] / sched.sqrt_alphas_cumprod[k]) * z[i];
    assert.ok(Math.abs(got[i] - want) < 1e-4, `[${i}] ${got[i]} vs ${want}`);
  }
  tf.dispose([a, b, c, noise, guide]);
  model.dispose();
});
