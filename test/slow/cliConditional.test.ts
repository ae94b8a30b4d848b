// The `ddpm` command line on a class-conditional checkpoint: train --conditional → sample a class with guidance
// (the classes line, the grid's size), every class in turn, no class; a class the model does not have is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliIn, pngSize, tinyTrainArgs } from '../helpers/cli.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-cli-class-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ddpm = cliIn(tmp);
const size = (file: string) => pngSize(tmp, file);

/** A tiny model trained a few steps on the bundled MNIST digits (10 classes with --conditional). */
function train(out: string, ...extra: string[]) {
  const r = ddpm(...tinyTrainArgs({ out, steps: 4, batch: 4, saveEvery: 0, sampleEvery: 0 }, ...extra));
  assert.equal(r.code, 0, r.stderr);
  return `${out}/latest.safetensors`;
}

test('sample --class 3 --guidance 2 on a conditional checkpoint; each class in turn; no class; class 11 refused', async () => {
  const ckpt = train('cond', '--conditional');
  const inspect = ddpm('inspect', ckpt, '--json');
  assert.equal(inspect.code, 0, inspect.stderr);
  const header = JSON.parse(inspect.stdout) as { model: { numClasses?: number }; classes?: string[] };
  assert.equal(header.model.numClasses, 10);
  assert.deepEqual(header.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

  const three = ddpm('sample', '--ckpt', ckpt, '--n', '4', '--steps', '5', '--class', '3', '--guidance', '2');
  assert.equal(three.code, 0, three.stderr);
  assert.match(three.stderr, /^classes: 3; guidance 2$/m);
  // 4 images of 28 px (the tiny preset at MNIST's size) in a 2×2 grid with 2-px gaps: 2·28 + 3·2 = 62.
  assert.deepEqual(await size('samples.png'), [62, 62]);

  const each = ddpm('sample', '--ckpt', ckpt, '--n', '12', '--steps', '2', '--guidance', '0.5', '--out', 'each.png');
  assert.equal(each.code, 0, each.stderr);
  assert.match(each.stderr, /^classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 \(image by image, in turn\); guidance 0\.5$/m);
  // 12 images: ⌈√12⌉ = 4 columns, 3 rows → 4·28 + 5·2 = 122 by 3·28 + 4·2 = 92.
  assert.deepEqual(await size('each.png'), [122, 92]);

  const none = ddpm('sample', '--ckpt', ckpt, '--n', '1', '--steps', '2', '--class', 'any', '--out', 'any.png');
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, /^classes: none \(unconditional\); guidance 2$/m);

  const eleven = ddpm('sample', '--ckpt', ckpt, '--n', '1', '--steps', '2', '--class', '11', '--out', 'x.png');
  assert.equal(eleven.code, 1, eleven.stderr);
  assert.match(eleven.stderr, /^ddpm: class 11 is out of range: this model has classes 0\.\.9$/m);
  assert.ok(!fs.existsSync(path.join(tmp, 'x.png')), 'nothing written');

  const bad = ddpm('sample', '--ckpt', ckpt, '--class', 'three');
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^ddpm: --class must be a class number, each or any, got 'three'$/m);
  const tooStrong = ddpm('sample', '--ckpt', ckpt, '--guidance', '21');
  assert.equal(tooStrong.code, 2, tooStrong.stderr);
  assert.match(tooStrong.stderr, /^ddpm: --guidance /m);
});

test('sample --class on an unconditional checkpoint is refused; without --class it prints no classes line', () => {
  const ckpt = train('plain');
  const r = ddpm('sample', '--ckpt', ckpt, '--n', '1', '--steps', '2', '--class', '3', '--out', 'p.png');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /not class-conditional/);
  const ok = ddpm('sample', '--ckpt', ckpt, '--n', '1', '--steps', '2', '--out', 'p.png');
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /^classes:/m);
});
