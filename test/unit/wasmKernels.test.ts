// The wasm training kernels (filter/input gradients of conv2d, batched and transposed matMul) against tfjs-cpu.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { CONV_GRAD_CASES, maxRelDiff, mk, randn } from '../helpers/tensors.ts';

async function onBackend<T>(name: string, f: () => T): Promise<T> {
  await tf.setBackend(name);
  return f();
}

test('wasm conv2d gradients match tfjs-cpu (3×3 same, stride 2, 1×1, valid)', async () => {
  const report = await initBackend('wasm');
  assert.equal(report.name, 'wasm');
  const cases = CONV_GRAD_CASES;
  const rng = new Rng(7);
  for (const c of cases) {
    const x = randn(c.x, rng);
    const w = randn(c.f, rng);
    const grads = (backend: string) =>
      onBackend(backend, () =>
        tf.tidy(() =>
          tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
            tf.sum(tf.square(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad))),
          )([mk(x), mk(w)]),
        ),
      );
    const ref = await grads('cpu');
    const got = await grads('wasm');
    const dx = await maxRelDiff(got[0], ref[0]);
    const dw = await maxRelDiff(got[1], ref[1]);
    assert.deepEqual(got[1].shape, c.f);
    assert.ok(dx < 1e-5, `dx ${JSON.stringify(c)}: ${dx}`);
    assert.ok(dw < 1e-5, `dw ${JSON.stringify(c)}: ${dw}`);
    tf.dispose([...ref, ...got]);
  }
  await tf.setBackend('wasm');
});

test('wasm batched and transposed matMul match tfjs-cpu, forward and backward', async () => {
  await initBackend('wasm');
  const rng = new Rng(8);
  const shapes: [number[], number[], boolean, boolean][] = [
    [[3, 5, 4], [3, 4, 6], false, false],
    [[3, 4, 5], [3, 4, 6], true, false],
    [[3, 5, 4], [3, 6, 4], false, true],
    [[5, 4], [6, 4], false, true],
    [[4, 5], [4, 6], true, false],
    [[1, 5, 4], [1, 4, 6], false, false],
  ];
  for (const [sa, sb, ta, tb] of shapes) {
    const a = randn(sa, rng);
    const b = randn(sb, rng);
    const run = (backend: string) =>
      onBackend(backend, () => {
        return tf.tidy(() => {
          const [ta0, tb0] = [mk(a), mk(b)];
          const g = tf.grads((aa: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.matMul(aa, bb, ta, tb))))([
            ta0,
            tb0,
          ]);
          return [tf.matMul(ta0, tb0, ta, tb), ...g];
        });
      });
    const ref = await run('cpu');
    const got = await run('wasm');
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(got[i].shape, ref[i].shape);
      const d = await maxRelDiff(got[i], ref[i]);
      assert.ok(d < 1e-5, `${sa}×${sb} ta=${ta} tb=${tb} output ${i}: ${d}`);
    }
    tf.dispose([...ref, ...got]);
  }
  await tf.setBackend('wasm');
});

test('the wasm kernels leak no tensors', async () => {
  await initBackend('wasm');
  const x = tf.randomNormal([2, 8, 8, 4]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 4, 4]) as tf.Tensor4D;
  const step = () =>
    tf
      .tidy(() =>
        tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2, 'same')))([
          x,
          w,
        ]),
      )
      .forEach((t) => t.dispose());
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, w]);
});

test('wasm Slice / SplitV / Unpack (heap-view copies) match tfjs-cpu for ranks 1–5, float32 and int32', async () => {
  await initBackend('wasm');
  const rng = new Rng(9);
  const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
    { shape: [10], begin: [3], size: [4] },
    { shape: [4, 6], begin: [1, 2], size: [2, 3] },
    { shape: [4, 6], begin: [1, 0], size: [2, 6] },
    { shape: [3, 4, 5], begin: [1, 1, 0], size: [2, 2, 5] },
    { shape: [3, 4, 5], begin: [0, 0, 1], size: [3, 4, 3] },
    { shape: [2, 3, 4, 5], begin: [1, 0, 2, 1], size: [1, 3, 2, 3] },
    { shape: [2, 3, 2, 4, 3], begin: [0, 1, 1, 0, 1], size: [2, 2, 1, 4, 2] },
    { shape: [3, 4], begin: [0, 0], size: [0, 4] },
  ];
  for (const c of cases) {
    const h = randn(c.shape, rng);
    const run = (backend: string, dtype: 'float32' | 'int32') =>
      onBackend(backend, () =>
        tf.tidy(() => {
          const x =
            dtype === 'int32'
              ? tf.tensor(
                  Int32Array.from(h.values, (v) => Math.round(v * 100)),
                  c.shape,
                  'int32',
                )
              : mk(h);
          const axis = c.shape.length - 1;
          const sizes = [1, c.shape[axis] - 1];
          return [tf.slice(x, c.begin, c.size), ...tf.split(x, sizes, axis), ...tf.unstack(x, 0)];
        }),
      );
    for (const dtype of ['float32', 'int32'] as const) {
      const ref = await run('cpu', dtype);
      const got = await run('wasm', dtype);
      assert.equal(got.length, ref.length);
      for (let i = 0; i < ref.length; i++) {
        assert.deepEqual(got[i].shape, ref[i].shape, `${JSON.stringify(c)} output ${i}`);
        assert.equal(got[i].dtype, dtype);
        assert.deepEqual(
          Array.from(await got[i].data()),
          Array.from(await ref[i].data()),
          `${JSON.stringify(c)} ${dtype} output ${i}`,
        );
      }
      tf.dispose([...ref, ...got]);
    }
  }
  await tf.setBackend('wasm');
});
