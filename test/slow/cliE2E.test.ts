// The `ddpm` command line end to end on a tiny model: train → checkpoint → sample (grid, trajectory, x̂0) →
// interpolate → inspect → export; and bad arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_BUNDLE, cliEnv, cliIn, pngSize, tinyTrainArgs } from '../helpers/cli.ts';
import { countParams, paramSpecs, presetConfig } from '../../sidecar/ddpm/unet.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-cli-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ddpm = cliIn(tmp);
const size = (file: string) => pngSize(tmp, file);

test('train 20 steps → sample → interpolate → inspect → export', async () => {
  const train = ddpm(
    ...tinyTrainArgs(
      { out: 'run', steps: 20, batch: 4, saveEvery: 10, sampleEvery: 20 },
      '--warmup',
      '5',
      '--lr',
      '1e-3',
      '--seed',
      '1',
    ),
  );
  assert.equal(train.code, 0, train.stderr);
  assert.match(train.stderr, /step 20\/20 {2}loss \d\.\d{4} {2}[\d.]+ it\/s {2}ETA/);
  assert.match(train.stderr, /checkpoint run\/ckpt-0000010\.safetensors/);
  assert.match(train.stderr, /done at step 20: run\/ckpt-0000020\.safetensors/);
  const csv = fs
    .readFileSync(path.join(tmp, 'run', 'loss.csv'), 'utf8')
    .trim()
    .split('\n');
  assert.equal(csv[0], 'step,loss,grad_norm,lr,seconds,loss_q1,loss_q2,loss_q3,loss_q4');
  assert.equal(csv.length, 21);
  // 16 preview samples in a 4×4 grid of 28-pixel digits with 2-pixel gaps: 4·28 + 5·2 = 122.
  assert.deepEqual(await size('run/samples/step-0000020.png'), [122, 122]);

  const sample = ddpm(
    'sample',
    '--ckpt',
    'run/latest.safetensors',
    '--n',
    '4',
    '--sampler',
    'ddim',
    '--steps',
    '10',
    '--seed',
    '5',
    '--out',
    'out/grid.png',
    '--trajectory',
    'out/traj.png',
    '--x0',
    'out/x0.png',
    '--frames',
    '5',
  );
  assert.equal(sample.code, 0, sample.stderr);
  assert.deepEqual(await size('out/grid.png'), [2 * 28 + 3 * 2, 2 * 28 + 3 * 2]);
  // Rows = samples, columns = frames.
  assert.deepEqual(await size('out/traj.png'), [5 * 28 + 6 * 2, 4 * 28 + 5 * 2]);
  assert.deepEqual(await size('out/x0.png'), [5 * 28 + 6 * 2, 4 * 28 + 5 * 2]);
  const again = ddpm(
    'sample',
    '--ckpt',
    'run/latest.safetensors',
    '--n',
    '4',
    '--steps',
    '10',
    '--seed',
    '5',
    '--out',
    'out/grid2.png',
  );
  assert.equal(again.code, 0);
  assert.deepEqual(
    fs.readFileSync(path.join(tmp, 'out/grid2.png')),
    fs.readFileSync(path.join(tmp, 'out/grid.png')),
    'same seed, same samples',
  );

  const interp = ddpm(
    'interpolate',
    '--ckpt',
    'run/latest.safetensors',
    '--a',
    'out/grid.png',
    '--b',
    'run/samples/step-0000020.png',
    '--t',
    '300',
    '--lambdas',
    '0,0.5,1',
    '--steps',
    '10',
    '--out',
    'out/strip.png',
  );
  assert.equal(interp.code, 0, interp.stderr);
  assert.deepEqual(await size('out/strip.png'), [5 * 28 + 6 * 2, 28 + 2 * 2]);

  const inspect = ddpm('inspect', 'run/latest.safetensors', '--json');
  assert.equal(inspect.code, 0, inspect.stderr);
  const j = JSON.parse(inspect.stdout);
  assert.equal(j.format, 'ddpm-studio/1');
  assert.equal(j.step, 20);
  assert.equal(j.preset, 'tiny');
  assert.equal(j.lossHistory.points, 20);
  assert.equal(j.tensors.length, 4 * j.tensors.filter((t: { name: string }) => t.name.startsWith('model.')).length);
  // Only the model's weights count (not the EMA copy or Adam's moments): the tiny preset's at MNIST's 28×28 (the data
  // fixes the image size), counted from the preset's definition. That is 12,864 fewer than at its own 16×16: its
  // attention is at 8×8, a resolution a 28×28 model of two levels (28, 14) does not have.
  assert.equal(j.model.imageSize, 28);
  assert.equal(j.params, countParams(paramSpecs(presetConfig('tiny', { imageSize: 28 }))));
  assert.equal(j.params, 163_985);

  const exp = ddpm('export', '--ckpt', 'run/latest.safetensors', '--out', 'out/weights.safetensors', '--f16');
  assert.equal(exp.code, 0, exp.stderr);
  const w = JSON.parse(ddpm('inspect', 'out/weights.safetensors', '--json').stdout);
  assert.equal(w.kind, 'weights');
  assert.equal(w.params, j.params);
  assert.ok(w.tensors.every((t: { dtype: string; name: string }) => t.dtype === 'F16' && t.name.startsWith('model.')));
  const fromWeights = ddpm(
    'sample',
    '--ckpt',
    'out/weights.safetensors',
    '--n',
    '1',
    '--steps',
    '5',
    '--out',
    'out/one.png',
  );
  assert.equal(fromWeights.code, 0, fromWeights.stderr);

  const resumed = ddpm(...tinyTrainArgs({ out: 'run', steps: 22, batch: 4 }, '--resume'));
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from run\/latest\.safetensors at step 20/);
  assert.match(resumed.stderr, /done at step 22/);
});

test('bad input: one-line error + usage and exit 2 for bad arguments, exit 1 for bad files', () => {
  for (const args of [
    ['train', '--data', 'mnist'],
    ['train', '--data', 'mnist', '--preset', 'tiny', '--steps', 'x', '--batch', '2', '--out', 'r'],
    ['sample'],
    ['sample', '--ckpt', 'a', '--sampler', 'euler'],
  ]) {
    const r = ddpm(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ddpm: .+\n/);
    assert.match(r.stderr, /usage:/);
  }
  fs.writeFileSync(path.join(tmp, 'notes.txt'), 'not a checkpoint');
  const notCkpt = ddpm('sample', '--ckpt', 'notes.txt');
  assert.equal(notCkpt.code, 1);
  assert.match(notCkpt.stderr, /notes\.txt: not a valid safetensors file/);
  const missing = ddpm('inspect', 'nope.safetensors');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /file not found: nope\.safetensors/);
  const badData = ddpm(
    'train',
    '--data',
    'imagenet',
    '--preset',
    'tiny',
    '--steps',
    '1',
    '--batch',
    '1',
    '--out',
    'r2',
  );
  assert.equal(badData.code, 1);
  assert.match(badData.stderr, /unknown data source 'imagenet'/);
});

test('Ctrl-C during training saves a checkpoint, then exits cleanly', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    process.execPath,
    [CLI_BUNDLE, ...tinyTrainArgs({ out: 'interrupted', steps: 100000, batch: 2 })],
    { cwd: tmp, env: cliEnv() },
  );
  let stderr = '';
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/step \d+\/100000/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', (c) => resolve(c));
  });
  assert.equal(code, 0, stderr);
  assert.match(stderr, /stopping: saving a checkpoint/);
  const m = /stopped at step (\d+): (\S+)/.exec(stderr);
  assert.ok(m, stderr);
  const inspect = ddpm('inspect', path.join('interrupted', 'latest.safetensors'), '--json');
  assert.equal(JSON.parse(inspect.stdout).step, Number(m[1]));
});

test('train --workers 2: the progress line says the step ran on 2 threads', () => {
  const r = ddpm(
    ...tinyTrainArgs({ out: 'threads', steps: 2, batch: 4, saveEvery: 0 }, '--workers', '2', '--seed', '2'),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^backend: wasm — WebAssembly SIMD \(XNNPACK\)$/m);
  assert.match(r.stderr, /step 2\/2 {2}loss \d\.\d{4} {2}[\d.]+ it\/s on 2 threads {2}ETA/);
});
