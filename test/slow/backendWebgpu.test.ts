// WebGPU on Mesa's software adapter (llvmpipe through Dawn's OpenGL ES backend), each case in a fresh process: taking
// the adapter, training steps against wasm, the buffer pool, the golden vectors. Backend selection without an adapter
// is in test/unit/backend.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../helpers/paths.ts';
import { initInChild as init, SOFTWARE_ADAPTER, trainStepsInChild } from '../helpers/backendProcess.ts';

test('auto passes over a software WebGPU adapter (slower than wasm); an explicit webgpu takes it', () => {
  const auto = init('auto', SOFTWARE_ADAPTER);
  assert.ok(auto.ok, auto.message);
  const webgpu = auto.report!.attempts.find((a) => a.name === 'webgpu')!;
  assert.match(webgpu.reason!, /only a software adapter was found \(.*llvmpipe/);
  const explicit = init('webgpu', SOFTWARE_ADAPTER);
  assert.ok(explicit.ok, explicit.message);
  assert.equal(explicit.report!.name, 'webgpu');
  assert.match(explicit.report!.device, /llvmpipe.*\(software\)/);
});

test('training steps on WebGPU (software adapter) match wasm, with async reads only and no leak', () => {
  const wasm = trainStepsInChild('wasm');
  const gpu = trainStepsInChild('webgpu', SOFTWARE_ADAPTER);
  assert.equal(gpu.error, undefined, gpu.error);
  assert.equal(gpu.backend, 'webgpu');
  assert.equal(gpu.losses.length, 3);
  for (let i = 0; i < 3; i++)
    assert.ok(
      Math.abs(gpu.losses[i] - wasm.losses[i]) < 1e-4,
      `step ${i}: webgpu ${gpu.losses[i]} vs wasm ${wasm.losses[i]}`,
    );
  assert.equal(gpu.leaked, 0);
  assert.equal(wasm.leaked, 0);
});

test("the WebGPU buffer pool holds far less than tfjs' exact-size pool for the same steps, with the same losses", () => {
  const ours = trainStepsInChild('webgpu', SOFTWARE_ADAPTER);
  const tfjs = trainStepsInChild('webgpu', { ...SOFTWARE_ADAPTER, DDPM_WEBGPU_POOL: 'exact' });
  assert.equal(ours.error, undefined, ours.error);
  assert.equal(tfjs.error, undefined, tfjs.error);
  // Bigger buffers and reuse across sizes change where tensors live, not what any kernel computes.
  assert.deepEqual(ours.losses, tfjs.losses);
  assert.equal(ours.leaked, 0);
  assert.ok(ours.gpuPeakBytes! > 0 && tfjs.gpuPeakBytes! > 0);
  assert.ok(
    ours.gpuPeakBytes! < 0.75 * tfjs.gpuPeakBytes!,
    `pool peak ${ours.gpuPeakBytes} B vs tfjs' ${tfjs.gpuPeakBytes} B`,
  );
});

test('the golden vectors also hold on WebGPU (check-golden --backend webgpu)', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot, 'scripts', 'check-golden.ts'),
      path.join(repoRoot, 'test', 'fixtures', 'golden', 'steps_small.json'),
      '--backend',
      'webgpu',
    ],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, ...SOFTWARE_ADAPTER },
      timeout: 300_000,
    },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /backend: webgpu/);
  assert.match(r.stdout, /133 fields checked, 0 out of tolerance/);
});
