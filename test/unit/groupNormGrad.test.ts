// The fused GroupNorm (+ swish) with its closed-form gradient (sidecar/ddpm/layers.ts) against the same function
// composed from plain tfjs ops, differentiated by tfjs: values and all three gradients, on tfjs-cpu and on wasm, in
// both statistics layouts (libtensorflow's `channels` runs on any backend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { groupNormAct, groupNormLayoutFor, type GroupNormLayout } from '../../sidecar/ddpm/layers.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { buffersKeptForBackward, maxRelDiff } from '../helpers/tensors.ts';

/** The textbook definition, taped op by op. */
function reference(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  groups: number,
  act: 'none' | 'swish',
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const xg = tf.reshape(x, [b, h, w, groups, c / groups]);
  const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
  const xhat = tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, 1e-6))), [b, h, w, c]);
  const y = tf.add(tf.mul(xhat, gamma), beta);
  return (act === 'swish' ? tf.mul(y, tf.sigmoid(y)) : y) as tf.Tensor4D;
}

const cases: { shape: [number, number, number, number]; groups: number; act: 'none' | 'swish' }[] = [
  { shape: [2, 4, 4, 8], groups: 4, act: 'swish' },
  { shape: [3, 5, 3, 6], groups: 3, act: 'none' },
  { shape: [1, 7, 7, 4], groups: 1, act: 'swish' },
  { shape: [2, 2, 3, 12], groups: 12, act: 'swish' },
  { shape: [4, 1, 1, 32], groups: 8, act: 'none' },
];

for (const [backend, layout] of [
  ['cpu', 'rows'],
  ['wasm', 'rows'],
  ['cpu', 'channels'],
  ['wasm', 'channels'],
] as const) {
  test(`fused GroupNorm(+swish), ${layout} layout, matches the composed ops in value and gradients on ${backend}`, async () => {
    if (backend === 'wasm') await initBackend('wasm');
    await tf.setBackend(backend);
    const rng = new Rng(3);
    for (const c of cases) {
      const n = c.shape.reduce((p, q) => p * q, 1);
      const ch = c.shape[3];
      // Non-zero means and unequal scales, so that centring and scaling both matter.
      const x = tf.tensor4d(
        Float32Array.from({ length: n }, (_, i) => (rng.uniform() * 2 - 1) * (1 + (i % ch)) + 0.3 * (i % 5)),
        c.shape,
      );
      const gamma = tf.tensor1d(Float32Array.from({ length: ch }, () => rng.uniform() * 2 - 0.5));
      const beta = tf.tensor1d(Float32Array.from({ length: ch }, () => rng.uniform() - 0.5));
      const upstream = tf.tensor4d(
        Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1),
        c.shape,
      );
      const run = (f: typeof reference) =>
        tf.tidy(() => {
          const value = f(x, gamma, beta, c.groups, c.act);
          const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
            tf.sum(tf.mul(f(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, c.groups, c.act), upstream)),
          )([x, gamma, beta]);
          return [value, ...grads];
        });
      const want = run(reference);
      const got = run((a, g, b, groups, act) => groupNormAct(a, g, b, groups, act, 1e-6, layout as GroupNormLayout));
      const names = ['value', 'dx', 'dgamma', 'dbeta'];
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(got[i].shape, want[i].shape, `${names[i]} ${JSON.stringify(c)}`);
        const d = await maxRelDiff(got[i], want[i]);
        assert.ok(d < 1e-5, `${names[i]} ${JSON.stringify(c)} on ${backend}: relative error ${d}`);
      }
      tf.dispose([x, gamma, beta, upstream, ...want, ...got]);
    }
  });
}

test('the fused GroupNorm keeps fewer tensors alive for its gradient and leaks none', async () => {
  await initBackend('wasm');
  const x = tf.randomNormal([2, 8, 8, 16]) as tf.Tensor4D;
  const gamma = tf.ones([16]) as tf.Tensor1D;
  const beta = tf.zeros([16]) as tf.Tensor1D;
  // What the tape keeps for the backward pass of 8 stacked layers.
  const keptBuffers = (f: typeof reference): number =>
    buffersKeptForBackward(x, 8, (h) => f(h, gamma, beta, 4, 'swish'));
  const base = tf.engine().backend.numDataIds();
  const fused = keptBuffers(groupNormAct) - base;
  const composed = keptBuffers(reference) - base;
  assert.ok(fused <= 8 * 4 + 2, `fused: ${fused} buffers for 8 layers`);
  assert.ok(fused < composed / 3, `fused ${fused} buffers vs composed ${composed}`);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++)
    tf.dispose(tf.grads((a: tf.Tensor) => tf.sum(groupNormAct(a as tf.Tensor4D, gamma, beta, 4, 'swish')))([x]));
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, gamma, beta]);
});

test("the backward pass frees each layer's temporaries as it goes: peak memory of 8 stacked layers stays near one", async () => {
  await initBackend('wasm');
  const x = tf.randomNormal([4, 16, 16, 32]) as tf.Tensor4D;
  const gamma = tf.ones([32]) as tf.Tensor1D;
  const beta = tf.zeros([32]) as tf.Tensor1D;
  // tfjs runs a custom gradient outside any tidy scope: unless the gradient tidies up itself, the temporaries of
  // every layer's backward pass stay alive until the whole backward pass ends.
  const peak = async (layers: number) =>
    (
      await tf.profile(() =>
        tf.dispose(
          tf.grads((a: tf.Tensor) => {
            let h = a as tf.Tensor4D;
            for (let i = 0; i < layers; i++) {
              const hin = h;
              h = tf.tidy(() => groupNormAct(hin, gamma, beta, 8, 'swish'));
            }
            return tf.sum(h);
          })([x]),
        ),
      )
    ).peakBytes;
  const one = await peak(1);
  const eight = await peak(8);
  assert.ok(eight < one * 2, `peak tensor bytes: 1 layer ${one}, 8 layers ${eight}`);
  tf.dispose([x, gamma, beta]);
});

test('libtensorflow takes the channels layout, the wasm, JavaScript and WebGPU backends the row layout', () => {
  assert.equal(groupNormLayoutFor('tensorflow'), 'channels');
  for (const b of ['wasm', 'cpu', 'webgpu']) assert.equal(groupNormLayoutFor(b), 'rows', b);
});
