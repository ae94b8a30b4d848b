// The bundled `ddpm` command line (dist/ddpm.js, built by `npm run build`): it runs from dist/ with its wasm files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CLI_BUNDLE, cliIn, tinyTrainArgs } from '../helpers/cli.ts';
import { repoRoot } from '../helpers/paths.ts';

const run = cliIn(repoRoot);

function ddpm(...args: string[]) {
  assert.ok(fs.existsSync(CLI_BUNDLE), 'dist/ddpm.js is missing: run npm run build');
  return run(...args);
}

test('ddpm model --preset cifar10 --json reports exactly 35,746,307 parameters', () => {
  const r = ddpm('model', '--preset', 'cifar10', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.params, 35_746_307);
  assert.equal(j.tensors, 328);
  assert.deepEqual(j.config.chMult, [1, 2, 2, 2]);
  const text = ddpm('model', '--preset', 'mnist');
  assert.match(text.stdout, /preset mnist: 1,062,497 parameters/);
});

test('ddpm info initialises a backend from the bundle (wasm binaries found next to it)', () => {
  const r = ddpm('info', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.ok(['tensorflow', 'webgpu', 'wasm'].includes(j.name), j.name);
  assert.equal(j.attempts.at(-1).ok, true);
});

test('bad usage exits 2 with a message and the usage; --help prints the usage', () => {
  const none = ddpm();
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage:/);
  const unknown = ddpm('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const missing = ddpm('model');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing --preset/);
  const preset = ddpm('model', '--preset', 'imagenet');
  assert.equal(preset.code, 2);
  assert.match(preset.stderr, /--preset must be one of mnist, tiny, cifar10, celebahq256, got 'imagenet'/);
  const unknownFlag = ddpm('sample', '--ckpt', 'models/mnist.safetensors', '--temperature', '2');
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /unknown option '--temperature'/);
  const help = ddpm('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /ddpm sample --ckpt FILE \[--n 16\]/);
  const sampleHelp = ddpm('sample', '--help');
  assert.equal(sampleHelp.code, 0);
  assert.match(sampleHelp.stdout, /^usage: ddpm sample --ckpt FILE/);
  const missing2 = ddpm('inspect', 'no/such.safetensors');
  assert.equal(missing2.code, 1);
  assert.match(missing2.stderr, /file not found: no\/such\.safetensors/);
  const workers = ddpm(...tinyTrainArgs({ out: 'unused', steps: 1, batch: 2 }, '--workers', '0'));
  assert.equal(workers.code, 2);
  assert.match(workers.stderr, /--workers must be auto or an integer in 1\.\.64, got 0/);
});
