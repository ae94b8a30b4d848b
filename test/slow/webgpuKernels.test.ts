// Our WebGPU gradient kernels (sidecar/kernels/webgpuTrainingKernels.ts) against tfjs-cpu on random inputs, on Mesa's
// software adapter (Dawn's OpenGL ES backend): both replaceable kernels are switched on for this process. Their settings
// (DDPM_WEBGPU_KERNELS, DDPM_WEBGPU_POOL) and the pool's size classes, which need no adapter, are in
// test/unit/webgpuConfig.test.ts.
process.env.EGL_PLATFORM = 'surfaceless';
process.env.DDPM_WEBGPU_KERNELS = 'filter,input';

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  assertBackendHealthy,
  BackendFaultError,
  initBackend,
  releaseCachedMemory,
  shutdownBackend,
} from '../../sidecar/backend.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { IM2COL_MIN_WORK } from '../../sidecar/kernels/webgpuTrainingKernels.ts';
import { conv2dBackpropFilter, makeConv2dBackpropFilterIm2col } from '../../sidecar/kernels/convGradients.ts';
import { backendDropout as dropout, webgpuDropoutAvailable } from '../../sidecar/kernels/webgpuDropout.ts';
import { SizeClassBufferPool } from '../../sidecar/kernels/webgpuBufferPool.ts';
import { CONV_GRAD_CASES, maxRelDiff, mk, randn } from '../helpers/tensors.ts';

const init = () => initBackend('webgpu', { webgpuFlags: ['backend=opengles'], webgpuFeatureLevel: 'compatibility' });

after(async () => {
  await tf.setBackend('webgpu');
  await shutdownBackend();
});

test('webgpu conv2d gradients (filter and input kernels replaced) match tfjs-cpu, odd shapes included', async () => {
  const report = await init();
  assert.equal(report.name, 'webgpu');
  assert.equal(tf.getKernel('Conv2DBackpropFilter', 'webgpu')?.kernelFunc.name, 'conv2dBackpropFilterBySize');
  const cases = CONV_GRAD_CASES;
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

test('on webgpu, the im2col filter gradient split into batched products and groups, and the forward-conv form, match tfjs-cpu', async () => {
  await init();
  const forms: [string, tf.KernelFunc][] = [
    [
      'im2col, 8-row matrices, 1200-byte groups',
      makeConv2dBackpropFilterIm2col({ splitKRows: 8, maxPatchBytes: 1200 }) as tf.KernelFunc,
    ],
    ['forward-conv form', conv2dBackpropFilter as tf.KernelFunc],
  ];
  const rng = new Rng(12);
  for (const c of [{ x: [8, 4, 4, 2], f: [3, 3, 2, 3], stride: 1, pad: 'valid' as const }, ...CONV_GRAD_CASES]) {
    const xh = randn(c.x, rng);
    const attrs = {
      strides: [c.stride, c.stride],
      pad: c.pad,
      dataFormat: 'NHWC',
      dilations: [1, 1],
      filterShape: c.f,
    } as unknown as tf.NamedAttrMap;
    await tf.setBackend('cpu');
    const yShape = tf.tidy(
      () => tf.conv2d(mk(xh) as tf.Tensor4D, tf.zeros(c.f as [number, number, number, number]), c.stride, c.pad).shape,
    );
    const dyh = randn(yShape, rng);
    const ref = tf.tidy(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: mk(xh), dy: mk(dyh) }, attrs) as tf.Tensor,
    );
    await tf.setBackend('webgpu');
    const [x, dy] = [mk(xh), mk(dyh)];
    for (const [name, kernel] of forms) {
      const got = kernel({ inputs: { x, dy }, attrs, backend: tf.backend() }) as tf.Tensor;
      const err = await maxRelDiff(got, ref);
      assert.ok(err < 1e-5, `${name} ${JSON.stringify(c)}: ${err}`);
      got.dispose();
    }
    tf.dispose([x, dy, ref]);
  }
});

test('webgpu filter gradient: the im2col form from IM2COL_MIN_WORK on, the convolution form below, both matching tfjs-cpu', async () => {
  await init();
  const rng = new Rng(13);
  // N·Ho·Wo·Ci·Co: 8·16·16·48·48 ≈ 4.7M (im2col) and 2·16·16·48·48 ≈ 1.2M (convolution).
  for (const [n, expectIm2col] of [
    [8, true],
    [2, false],
  ] as const) {
    assert.equal(n * 16 * 16 * 48 * 48 >= IM2COL_MIN_WORK, expectIm2col);
    const xh = randn([n, 16, 16, 48], rng);
    const dyh = randn([n, 16, 16, 48], rng);
    const attrs = {
      strides: [1, 1],
      pad: 'same',
      dataFormat: 'NHWC',
      dilations: [1, 1],
      filterShape: [3, 3, 48, 48],
    } as unknown as tf.NamedAttrMap;
    await tf.setBackend('cpu');
    const ref = tf.tidy(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: mk(xh), dy: mk(dyh) }, attrs) as tf.Tensor,
    );
    await tf.setBackend('webgpu');
    const [x, dy] = [mk(xh), mk(dyh)];
    const info = await tf.profile(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor);
    const names = info.kernels.map((k) => k.name);
    assert.equal(names.includes('BatchMatMul'), expectIm2col, `n=${n}: ${names.join(',')}`);
    assert.equal(names.includes('Conv2D'), !expectIm2col, `n=${n}: ${names.join(',')}`);
    const err = await maxRelDiff(info.result as tf.Tensor, ref);
    assert.ok(err < 1e-5, `n=${n}: ${err}`);
    tf.dispose([info.result as tf.Tensor, x, dy, ref]);
  }
});

test('the webgpu gradient kernels leak no tensors', async () => {
  await init();
  await tf.setBackend('webgpu');
  const x = tf.randomNormal([2, 8, 8, 4]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 4, 4]) as tf.Tensor4D;
  const step = async () => {
    const g = tf.tidy(() =>
      tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2, 'same')))([
        x,
        w,
      ]),
    );
    await g[1].data();
    tf.dispose(g);
  };
  await step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, w]);
});

test('an error the GPU reports (here a shader tfjs cannot compile) fails the next health check instead of passing garbage on', async () => {
  await init();
  await tf.setBackend('webgpu');
  assert.doesNotThrow(() => assertBackendHealthy());
  // tfjs-webgpu's Pad shader does not compile for rank 6: WebGPU skips the command and reports a validation error.
  const bad = tf.pad(tf.ones([1, 1, 1, 1, 1, 2]), [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 1],
  ]);
  await bad.data();
  bad.dispose();
  await new Promise((r) => setTimeout(r, 50));
  assert.throws(
    () => assertBackendHealthy(),
    (e: unknown) =>
      e instanceof BackendFaultError && /webgpu device reported an error.*GPUValidationError/.test(e.message),
  );
});

test('dropout runs in a shader on webgpu: the asked-for rate, inverted scaling, same mask forward and backward, no leak', async () => {
  await init();
  await tf.setBackend('webgpu');
  assert.ok(webgpuDropoutAvailable());
  const x = tf.ones([4, 16, 16, 32]) as tf.Tensor4D;
  const upstream = tf.randomUniform([4, 16, 16, 32], -1, 1, 'float32', 5);
  const run = async (seed: number) => {
    const [y, dx] = tf.tidy(() => {
      const yy = dropout(x, 0.1, seed);
      const g = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(dropout(a as tf.Tensor4D, 0.1, seed), upstream)))([x])[0];
      return [yy, g];
    });
    const out = { y: await y.data(), dx: await dx.data() };
    tf.dispose([y, dx]);
    return out;
  };
  const a = await run(7);
  const again = await run(7);
  const other = await run(8);
  const zeros = a.y.filter((v) => v === 0).length / a.y.length;
  assert.ok(Math.abs(zeros - 0.1) < 0.01, `zero fraction ${zeros}`);
  assert.ok(a.y.every((v) => v === 0 || Math.abs(v - 1 / 0.9) < 1e-6));
  assert.deepEqual(Array.from(a.y), Array.from(again.y));
  assert.notDeepEqual(Array.from(a.y), Array.from(other.y));
  // dL/dx = upstream ⊙ mask / (1 − rate) = upstream ⊙ y, since x is all ones: the backward shader drew the same mask.
  const u = await upstream.data();
  for (let i = 0; i < u.length; i++) assert.ok(Math.abs(a.dx[i] - u[i] * a.y[i]) < 1e-6, `element ${i}`);
  const before = tf.memory().numTensors;
  await run(9);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, upstream]);
});

test("the buffer pool serves a tensor from a larger freed buffer, and its values read back at the tensor's own size", async () => {
  await init();
  const backend = tf.backend() as unknown as {
    bufferManager: unknown;
    tensorMap: { get(id: object): { resource: unknown } };
  };
  assert.ok(backend.bufferManager instanceof SizeClassBufferPool, 'the size-class pool is installed');
  // Both made by shaders, so that each lives in a GPU buffer of its own from the start.
  const a = tf.fill([100_000], 3);
  const bufferA = backend.tensorMap.get(a.dataId).resource;
  assert.ok(bufferA);
  // Reading submits the queued commands: only then does disposing free the buffer at once (not after the next submit).
  await a.data();
  a.dispose();
  const b = tf.fill([99_000], 7);
  assert.equal(
    backend.tensorMap.get(b.dataId).resource,
    bufferA,
    'the freed 400,000-byte buffer is reused for 396,000 bytes',
  );
  const values = await b.data();
  assert.equal(values.length, 99_000);
  assert.ok(values.every((v) => v === 7));
  tf.dispose(b);
});

test("releasing cached memory destroys the pool's free buffers, and the backend keeps working", async () => {
  await init();
  const pool = (tf.backend() as unknown as { bufferManager: SizeClassBufferPool }).bufferManager;
  const made = Array.from({ length: 6 }, (_, i) => tf.fill([50_000 * (i + 1)], i));
  await Promise.all(made.map((t) => t.data()));
  tf.dispose(made);
  assert.ok(pool.getNumFreeBuffers() >= 6);
  const released = releaseCachedMemory();
  assert.ok(released >= 21 * 50_000 * 4, `released ${released} bytes`);
  assert.equal(pool.getNumFreeBuffers(), 0);
  assert.equal(pool.numBytesAllocated, pool.numBytesUsed);
  const sum = tf.tidy(() => tf.sum(tf.fill([100_000], 2)));
  assert.equal((await sum.data())[0], 200_000);
  sum.dispose();
});
