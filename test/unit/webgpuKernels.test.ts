// Our WebGPU gradient kernels (sidecar/kernels/webgpuTrainingKernels.ts) against tfjs-cpu on random inputs, on Mesa's
// software adapter (Dawn's OpenGL ES backend): both replaceable kernels are switched on for this process.
process.env.EGL_PLATFORM = 'surfaceless';
process.env.DDPM_WEBGPU_KERNELS = 'filter,input';

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { assertBackendHealthy, BackendFaultError, initBackend, shutdownBackend } from '../../sidecar/backend.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { webgpuKernelsFromEnv } from '../../sidecar/kernels/webgpuTrainingKernels.ts';

const init = () => initBackend('webgpu', { webgpuFlags: ['backend=opengles'], webgpuFeatureLevel: 'compatibility' });

after(async () => {
  await tf.setBackend('webgpu');
  await shutdownBackend();
});

async function maxRelDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  assert.equal(x.length, y.length);
  let scale = 0;
  for (const v of y) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(scale, 1e-12));
  return worst;
}

function randn(shape: number[], rng: Rng): { shape: number[]; values: Float32Array } {
  const values = new Float32Array(shape.reduce((p, q) => p * q, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform() * 2 - 1;
  return { shape, values };
}
const mk = (h: { shape: number[]; values: Float32Array }) => tf.tensor(h.values, h.shape);

test('webgpu conv2d gradients (filter and input kernels replaced) match tfjs-cpu, odd shapes included', async () => {
  const report = await init();
  assert.equal(report.name, 'webgpu');
  assert.equal(tf.getKernel('Conv2DBackpropFilter', 'webgpu')?.kernelFunc.name, 'conv2dBackpropFilter');
  const cases: { x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' }[] = [
    { x: [2, 8, 8, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same' },
    { x: [3, 8, 8, 4], f: [3, 3, 4, 4], stride: 2, pad: 'same' },
    { x: [2, 7, 9, 4], f: [3, 3, 4, 2], stride: 2, pad: 'same' },
    { x: [2, 6, 6, 4], f: [1, 1, 4, 6], stride: 1, pad: 'same' },
    { x: [1, 9, 9, 2], f: [3, 3, 2, 3], stride: 2, pad: 'valid' },
    { x: [5, 5, 3, 7], f: [3, 3, 7, 1], stride: 1, pad: 'same' },
    { x: [1, 1, 1, 3], f: [3, 3, 3, 2], stride: 1, pad: 'same' },
  ];
  const rng = new Rng(11);
  for (const c of cases) {
    const x = randn(c.x, rng);
    const w = randn(c.f, rng);
    const dyScale = randn(c.x.slice(0, 3).concat([c.f[3]]), rng);
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() =>
        tf.grads((xx: tf.Tensor, ww: tf.Tensor) => {
          const y = tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad);
          // A random upstream gradient (not all ones) so that every output position weighs differently.
          const s = c.stride === 1 && c.pad === 'same' ? mk(dyScale) : tf.onesLike(y);
          return tf.sum(tf.mul(y, s));
        })([mk(x), mk(w)]),
      );
    };
    const ref = await grads('cpu');
    const got = await grads('webgpu');
    assert.deepEqual(got[0].shape, c.x);
    assert.deepEqual(got[1].shape, c.f);
    const dx = await maxRelDiff(got[0], ref[0]);
    const dw = await maxRelDiff(got[1], ref[1]);
    assert.ok(dx < 1e-5, `dx ${JSON.stringify(c)}: ${dx}`);
    assert.ok(dw < 1e-5, `dw ${JSON.stringify(c)}: ${dw}`);
    tf.dispose([...ref, ...got]);
  }
  await tf.setBackend('webgpu');
});

test('the webgpu gradient kernels leak no tensors', async () => {
  await init();
  await tf.setBackend('webgpu');
  const x = tf.randomNormal([2, 8, 8, 4]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 4, 4]) as tf.Tensor4D;
  const step = async () => {
    const g = tf.tidy(() => tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2, 'same')))([x, w]));
    await g[1].data();
    tf.dispose(g);
  };
  await step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, w]);
});

test('DDPM_WEBGPU_KERNELS picks the replaced kernels and rejects unknown names', () => {
  assert.deepEqual(webgpuKernelsFromEnv({}), ['filter']);
  assert.deepEqual(webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'none' }), []);
  assert.deepEqual(webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'input, filter' }), ['input', 'filter']);
  assert.throws(() => webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'fliter' }), /unknown kernel 'fliter'/);
});

test('an error the GPU reports (here a shader tfjs cannot compile) fails the next health check instead of passing garbage on', async () => {
  await init();
  await tf.setBackend('webgpu');
  assert.doesNotThrow(() => assertBackendHealthy());
  // tfjs-webgpu's Pad shader does not compile for rank 6: WebGPU skips the command and reports a validation error.
  const bad = tf.pad(tf.ones([1, 1, 1, 1, 1, 2]), [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 1]]);
  await bad.data();
  bad.dispose();
  await new Promise((r) => setTimeout(r, 50));
  assert.throws(() => assertBackendHealthy(), (e: unknown) => e instanceof BackendFaultError && /webgpu device reported an error.*GPUValidationError/.test(e.message));
});
