'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { workspaceRoot, tempDir, pngInfo, exec } = require('./helpers');

/** The class-conditional `tiny` checkpoint run.mjs trained into the workspace (10 MNIST classes). */
function conditionalCheckpoint() {
  const file = path.join(workspaceRoot(), 'checkpoints', 'conditional-e2e.safetensors');
  assert.ok(fs.existsSync(file), `${file} does not exist (run.mjs makes it)`);
  return file;
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

suite('Sampling a class-conditional checkpoint (ddpm.sample with class and guidance)', () => {
  test('class 3, guidance 2: 4 images, all labelled 3, saved as a 62×62 grid', async () => {
    const checkpoint = conditionalCheckpoint();
    const saveTo = path.join(tempDir('sample-class'), 'grid.png');
    const t0 = Date.now();
    const r = await exec('ddpm.sample', { checkpoint, n: 4, steps: 5, seed: 3, class: 3, guidance: 2, saveTo });
    console.log(`ddpm.sample class 3 -> ${JSON.stringify(r)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.ok(r && typeof r === 'object', `result ${JSON.stringify(r)}`);
    assert.strictEqual(r.images, 4);
    assert.deepStrictEqual(r.labels, [3, 3, 3, 3]);
    assert.deepStrictEqual(r.classes, DIGITS);
    assert.strictEqual(r.grid, saveTo);
    const png = pngInfo(fs.readFileSync(saveTo));
    // 2×2 grid of 28-px digits (the tiny preset at MNIST's size) with 2-px padding: 2 + 2·(28 + 2) = 62.
    assert.deepStrictEqual({ width: png.width, height: png.height }, { width: 62, height: 62 });
  });

  test("the default class is each in turn (image i: class i mod 10); 'any' samples without a class", async () => {
    const checkpoint = conditionalCheckpoint();
    const each = await exec('ddpm.sample', { checkpoint, n: 12, steps: 2, seed: 1 });
    assert.deepStrictEqual(each && each.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    assert.strictEqual(each.images, 12);
    const any = await exec('ddpm.sample', { checkpoint, n: 2, steps: 2, seed: 1, class: 'any' });
    assert.deepStrictEqual(any && any.labels, [-1, -1]);
  });

  test('a class the checkpoint does not have is refused (no result)', async () => {
    const r = await exec('ddpm.sample', { checkpoint: conditionalCheckpoint(), n: 1, steps: 2, class: 11 });
    assert.strictEqual(r, undefined);
  });
});
