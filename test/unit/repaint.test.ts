// RePaint (Lugmayr et al. 2022): the jump schedule, the mask's semantics, the known region of the result, the jumps'
// marginals with an exact model, frames, cancellation and tensor counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { repaint, repaintSchedule, reverseSteps, type RepaintStepInfo } from '../../sidecar/ddpm/repaint.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import type { EpsModel } from '../../sidecar/ddpm/sampler.ts';
import { asEps, tinyModel } from '../helpers/tinyModel.ts';

test('the jump schedule is the authors’ get_schedule_jump: S = 10, j = 3, r = 2 by hand; lengths; r = 1 is plain', () => {
  // Jump points 0, 3, 6 (range(0, S − j, j)), each jumped from once (r − 1 = 1): going down, back up j, down again.
  assert.deepEqual(
    repaintSchedule(10, 3, 2),
    [9, 8, 7, 6, 7, 8, 9, 8, 7, 6, 5, 4, 3, 4, 5, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, -1],
  );
  assert.deepEqual(repaintSchedule(5, 2, 1), [4, 3, 2, 1, 0, -1]);
  // The paper's setting (250 steps, j = r = 10): 24 jump points, each 9 times up and down 10 steps.
  const paper = repaintSchedule(250, 10, 10);
  assert.equal(paper.length, 250 + 1 + 2 * 10 * 9 * 24);
  assert.equal(reverseSteps(paper), 250 + 10 * 9 * 24);
  for (const [s, j, r] of [
    [250, 10, 10],
    [50, 5, 5],
    [7, 10, 3],
    [12, 1, 4],
  ]) {
    const sched = repaintSchedule(s, j, r);
    assert.equal(sched[0], s - 1);
    assert.equal(sched.at(-1), -1);
    // Unit steps only, never above the start or below −1, and the final descent reaches every position.
    for (let i = 1; i < sched.length; i++) assert.equal(Math.abs(sched[i] - sched[i - 1]), 1, `step ${i}`);
    assert.ok(sched.every((p) => p >= -1 && p <= s - 1));
    const points = j < s ? Math.ceil((s - j) / j) : 0;
    assert.equal(sched.length, s + 1 + 2 * j * (r - 1) * points, `S=${s} j=${j} r=${r}`);
  }
  assert.throws(() => repaintSchedule(10, 0, 2), /jump length must be a positive integer/);
  assert.throws(() => repaintSchedule(10, 2, 0), /resampling must be a positive integer/);
});

test('mask semantics: white regenerates, black keeps the input exactly; an all-white mask ignores the input', async () => {
  await initBackend('auto');
  const model = tinyModel(1);
  const diffusion = new GaussianDiffusion(makeSchedule());
  const image = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 5) as tf.Tensor4D;
  const other = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 6) as tf.Tensor4D;
  // Regenerate the left half (mask 1), keep the right half.
  const maskHost = new Float32Array(16 * 16).map((_, i) => (i % 16 < 8 ? 1 : 0));
  const mask = tf.tensor4d(maskHost, [1, 16, 16, 1]);
  const opts = { steps: 10, jumpLength: 3, resample: 2, seed: 4 };
  const before = tf.memory().numTensors;
  const out = await repaint(asEps(model), diffusion, image, mask, 2, opts);
  assert.deepEqual(out.shape, [2, 16, 16, 1]);
  const [o, im] = [await out.data(), await image.data()];
  let changed = 0;
  for (let k = 0; k < 2; k++)
    for (let i = 0; i < 256; i++) {
      if (maskHost[i] === 0) assert.equal(o[k * 256 + i], im[i], `kept pixel ${i} of image ${k}`);
      else if (Math.abs(o[k * 256 + i] - im[i]) > 0.05) changed++;
    }
  assert.ok(changed > 200, `only ${changed} of 256 regenerated pixels differ from the input`);
  // The two images of the batch have their own noise: their regenerated halves differ.
  assert.notDeepEqual(Array.from(o.slice(0, 256)), Array.from(o.slice(256)));
  out.dispose();

  // All black: the input comes back; all white: the input does not matter (the same seed gives the same result).
  const keepAll = tf.zeros([1, 16, 16, 1]) as tf.Tensor4D;
  const kept = await repaint(asEps(model), diffusion, image, keepAll, 1, opts);
  assert.deepEqual(Array.from(await kept.data()), Array.from(im));
  const all = tf.ones([1, 16, 16, 1]) as tf.Tensor4D;
  const a = await repaint(asEps(model), diffusion, image, all, 1, opts);
  const b = await repaint(asEps(model), diffusion, other, all, 1, opts);
  assert.deepEqual(Array.from(await a.data()), Array.from(await b.data()));
  tf.dispose([kept, a, b, keepAll, all]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([image, other, mask]);
  model.dispose();
});

test('with an exact ε model of one image, the walk keeps q(x_t | x_0)’s marginals through the jumps', async () => {
  await initBackend('auto');
  // Data = the single image x* = 0: the optimal ε is x_t/√(1 − ᾱ_t), and x_t ~ N(0, (1 − ᾱ_t)·I) at every level.
  // Wrong jump coefficients (adjacent β instead of ᾱ_{t'}/ᾱ_t on the grid) or a wrong posterior would show here.
  const schedule = makeSchedule();
  const diffusion = new GaussianDiffusion(schedule);
  const ac = schedule.f64.alphas_cumprod;
  const exact: EpsModel = (x, t) =>
    tf.tidy(() =>
      tf.mul<tf.Tensor4D>(
        x,
        tf.tensor4d(
          t.map((ti) => 1 / Math.sqrt(1 - ac[ti])),
          [t.length, 1, 1, 1],
        ),
      ),
    );
  const n = 64;
  const image = tf.zeros([1, 8, 8, 1]) as tf.Tensor4D;
  const mask = tf.ones([1, 8, 8, 1]) as tf.Tensor4D;
  const checks: { t: number; variance: number }[] = [];
  const out = await repaint(exact, diffusion, image, mask, n, {
    steps: 20,
    jumpLength: 4,
    resample: 3,
    seed: 1,
    clip: false,
    wantTensors: () => true,
    onStep: async (s: RepaintStepInfo) => {
      if (!s.xt || s.tNext < 0) return;
      const v = (await s.xt.data()) as Float32Array;
      checks.push({ t: s.tNext, variance: v.reduce((sum, x) => sum + x * x, 0) / v.length });
    },
  });
  assert.equal(checks.length, reverseSteps(repaintSchedule(20, 4, 3)) - 1);
  for (const c of checks) {
    const want = 1 - ac[c.t];
    // 4,096 values: the sample variance is within ±10 % of the truth with overwhelming probability.
    assert.ok(Math.abs(c.variance / want - 1) < 0.1, `t=${c.t}: variance ${c.variance} vs ${want}`);
  }
  const x = await out.data();
  assert.ok(
    x.every((v) => Math.abs(v) < 1e-5),
    'the exact model returns its one image',
  );
  tf.dispose([out, image, mask]);
});

test('progress: one call per transition, frames only on the reverse steps asked for; cancel releases everything', async () => {
  await initBackend('auto');
  const model = tinyModel(2);
  const diffusion = new GaussianDiffusion(makeSchedule());
  const image = tf.randomUniform([1, 16, 16, 1], -1, 1, 'float32', 5) as tf.Tensor4D;
  const mask = tf.tensor4d(
    new Float32Array(256).map((_, i) => (i < 128 ? 1 : 0)),
    [1, 16, 16, 1],
  );
  const sched = repaintSchedule(8, 2, 2);
  const seen: RepaintStepInfo[] = [];
  let frames = 0;
  const out = await repaint(asEps(model), diffusion, image, mask, 1, {
    steps: 8,
    jumpLength: 2,
    resample: 2,
    seed: 3,
    wantTensors: (i, total) => i % 4 === 0 || i === total - 1,
    onStep: async (s) => {
      seen.push({ ...s, xt: undefined, predX0: undefined });
      if (s.xt && s.predX0) {
        frames++;
        assert.equal(s.direction, 'down');
        // x̂0 with the known pixels put back: the bottom half is the input's.
        const [p, im] = [await s.predX0.data(), await image.data()];
        for (let i = 128; i < 256; i++) assert.equal(p[i], im[i]);
      }
    },
  });
  out.dispose();
  assert.equal(seen.length, sched.length - 1);
  assert.deepEqual(
    seen.map((s) => (s.direction === 'down' ? -1 : 1)),
    sched.slice(1).map((p, i) => Math.sign(p - sched[i])),
  );
  const rt = reverseSteps(sched);
  assert.equal(seen.at(-1)!.reverse, rt);
  assert.equal(seen.at(-1)!.tNext, -1);
  assert.equal(frames, Array.from({ length: rt }, (_, i) => i % 4 === 0 || i === rt - 1).filter(Boolean).length);

  const ac = new AbortController();
  const before = tf.memory().numTensors;
  let calls = 0;
  await assert.rejects(
    repaint(asEps(model), diffusion, image, mask, 2, {
      steps: 8,
      jumpLength: 2,
      resample: 2,
      seed: 3,
      signal: ac.signal,
      onStep: () => {
        if (++calls === 5) ac.abort();
      },
    }),
    (e: Error) => e.name === 'AbortError',
  );
  assert.equal(calls, 5);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([image, mask]);
  model.dispose();
});
