// conv2dBias (sidecar/ddpm/layers.ts): the fused forward with a gradient that keeps only x and w, against
// tf.conv2d + bias differentiated by tfjs, on tfjs-cpu and on wasm (where our gradient kernels run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { conv2dBias } from '../../sidecar/ddpm/layers.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { buffersKeptForBackward, maxRelDiff } from '../helpers/tensors.ts';

const reference = (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, stride: number) =>
  tf.add(tf.conv2d(x, w, stride, 'same'), b) as tf.Tensor4D;

const cases: { x: [number, number, number, number]; k: number; co: number; stride: number }[] = [
  { x: [2, 8, 8, 3], k: 3, co: 5, stride: 1 },
  { x: [3, 7, 9, 4], k: 3, co: 2, stride: 2 },
  { x: [1, 6, 6, 4], k: 1, co: 6, stride: 1 },
  { x: [2, 5, 5, 1], k: 3, co: 3, stride: 2 },
];

for (const backend of ['cpu', 'wasm']) {
  test(`conv2dBias matches conv2d + bias in value and gradients on ${backend}`, async () => {
    if (backend === 'wasm') await initBackend('wasm');
    await tf.setBackend(backend);
    const rng = new Rng(21);
    const rand = (shape: number[]) =>
      tf.tensor(
        Float32Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => rng.uniform() * 2 - 1),
        shape,
      );
    for (const c of cases) {
      const x = rand(c.x) as tf.Tensor4D;
      const w = rand([c.k, c.k, c.x[3], c.co]) as tf.Tensor4D;
      const b = rand([c.co]) as tf.Tensor1D;
      const run = (f: typeof reference) =>
        tf.tidy(() => {
          const y = f(x, w, b, c.stride);
          const up = tf.sin(tf.range(0, y.size).reshape(y.shape));
          return [
            y,
            ...tf.grads((a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
              tf.sum(tf.mul(f(a as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, c.stride), up)),
            )([x, w, b]),
          ];
        });
      const want = run(reference);
      const got = run(conv2dBias);
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(got[i].shape, want[i].shape);
        const d = await maxRelDiff(got[i], want[i]);
        assert.ok(d < 1e-5, `${['y', 'dx', 'dw', 'db'][i]} ${JSON.stringify(c)} on ${backend}: ${d}`);
      }
      tf.dispose([x, w, b, ...want, ...got]);
    }
  });
}

test('conv2dBias keeps fewer buffers for the backward pass than tf.fused.conv2d (which also keeps y)', async () => {
  await initBackend('wasm');
  await tf.setBackend('wasm');
  const x = tf.randomNormal([2, 8, 8, 8]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 8, 8], 0, 0.1) as tf.Tensor4D;
  const b = tf.zeros([8]) as tf.Tensor1D;
  const fused = (a: tf.Tensor4D, ww: tf.Tensor4D, bb: tf.Tensor1D, s: number) =>
    tf.fused.conv2d({ x: a, filter: ww, strides: s, pad: 'same', bias: bb });
  // 6 stacked convolutions with a negation between (a new buffer whose gradient needs no saved input).
  // Each layer in its own tidy, as in the model: what the tape does not keep is freed at its end.
  const kept = (f: typeof reference): number =>
    buffersKeptForBackward(x, 6, (h) => tf.tidy(() => tf.neg(f(h, w, b, 1))));
  const base = tf.engine().backend.numDataIds();
  const ours = kept(conv2dBias) - base;
  const theirs = kept(fused) - base;
  assert.ok(ours <= theirs - 6, `conv2dBias kept ${ours} buffers, tf.fused.conv2d ${theirs}`);
  const before = tf.memory().numTensors;
  tf.dispose(tf.grads((a: tf.Tensor) => tf.sum(conv2dBias(a as tf.Tensor4D, w, b, 2)))([x]));
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, w, b]);
});
