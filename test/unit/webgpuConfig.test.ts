// The WebGPU settings and the buffer pool's size classes: pure functions, no adapter needed. The kernels and the pool
// on Mesa's software adapter are in test/slow/webgpuKernels.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webgpuKernelsFromEnv } from '../../sidecar/kernels/webgpuTrainingKernels.ts';
import { sizeClass, webgpuPoolFromEnv } from '../../sidecar/kernels/webgpuBufferPool.ts';

test('DDPM_WEBGPU_KERNELS picks the replaced kernels and rejects unknown names', () => {
  assert.deepEqual(webgpuKernelsFromEnv({}), ['filter']);
  assert.deepEqual(webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'none' }), []);
  assert.deepEqual(webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'input, filter' }), ['input', 'filter']);
  assert.deepEqual(webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'filter-conv' }), ['filter-conv']);
  assert.deepEqual(webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'filter-im2col,input' }), ['filter-im2col', 'input']);
  assert.throws(
    () => webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'filter,filter-conv' }),
    /choose one of filter, filter-im2col, filter-conv/,
  );
  assert.throws(() => webgpuKernelsFromEnv({ DDPM_WEBGPU_KERNELS: 'fliter' }), /unknown kernel 'fliter'/);
});

test('buffer pool size classes: never smaller than asked, at most 12.5 % larger above 64 KiB, 256-byte multiples', () => {
  for (let size = 4; size < 1 << 30; size = Math.ceil(size * 1.37) + 4) {
    const c = sizeClass(size);
    assert.ok(c >= size && c % 256 === 0, `${size} → ${c}`);
    if (size > 65536) assert.ok(c <= size * 1.125, `${size} → ${c}`);
  }
  assert.equal(sizeClass(400_000), sizeClass(396_000));
  assert.equal(webgpuPoolFromEnv({}), 'classes');
  assert.equal(webgpuPoolFromEnv({ DDPM_WEBGPU_POOL: 'exact' }), 'exact');
  assert.throws(() => webgpuPoolFromEnv({ DDPM_WEBGPU_POOL: 'huge' }), /DDPM_WEBGPU_POOL: unknown pool 'huge'/);
});
