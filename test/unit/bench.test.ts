// The benchmarks run and report what they say they measure: one tiny measurement each through the bundled scripts
// (as on a GPU machine), checked for their shapes, counts and units. No timing is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../helpers/paths.ts';

function runBundle(name: string, args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', name), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr);
  // --json: stdout is the JSON document and nothing else.
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

interface KernelRow {
  preset: string;
  shape: string;
  kernel: string;
  gflop: number;
  ms: number;
  gflopPerSec: number;
}

test('bench:kernels times the three conv kernels at every level of the preset', () => {
  const doc = runBundle('bench-kernels.js', [
    '--preset',
    'tiny',
    '--batch',
    '2',
    '--backend',
    'wasm',
    '--reps',
    '1',
    '--warmup',
    '0',
    '--json',
  ]);
  assert.equal(doc.backend, 'wasm');
  const rows = doc.results as KernelRow[];
  // tiny: 16 px, ch 16, chMult [1, 2] → two levels, three kernels each.
  assert.deepEqual(
    rows.map((r) => `${r.shape} ${r.kernel}`),
    [
      '2x16x16x16x16 conv2d',
      '2x16x16x16x16 filterGrad',
      '2x16x16x16x16 inputGrad',
      '2x8x8x32x32 conv2d',
      '2x8x8x32x32 filterGrad',
      '2x8x8x32x32 inputGrad',
    ],
  );
  for (const r of rows) {
    const [n, h, w, ci, co] = r.shape.split('x').map(Number);
    assert.equal(r.gflop, Math.round((2 * n * h * w * 9 * ci * co) / 1e6) / 1e3);
    assert.ok(r.ms > 0 && r.gflopPerSec > 0, JSON.stringify(r));
  }
  assert.deepEqual(doc.warnings, []);
});

test('bench:kernels refuses an unknown option with its usage', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'bench-kernels.js'), '--presets', 'tiny'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option '--presets'\nusage: npm run bench:kernels/);
});

test('bench (engine) measures a training step and reports no leak', () => {
  const doc = runBundle('bench.js', [
    '--preset',
    'tiny',
    '--batch',
    '2',
    '--backend',
    'wasm',
    '--mode',
    'train',
    '--steps',
    '2',
    '--warmup',
    '1',
    '--json',
  ]);
  const [r] = doc.results as {
    backend: string;
    preset: string;
    batch: number;
    train: { n: number; msMedian: number; lastLoss: number };
    tensors: { leaked: number };
  }[];
  assert.equal(r.backend, 'wasm');
  assert.equal(r.preset, 'tiny');
  assert.equal(r.train.n, 2);
  assert.ok(r.train.msMedian > 0);
  assert.ok(Number.isFinite(r.train.lastLoss));
  assert.equal(r.tensors.leaked, 0);
});
