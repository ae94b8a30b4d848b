'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { extension, tempDir, pngInfo, exec } = require('./helpers');

suite('Sampling (ddpm.sample with options)', () => {
  test('4 images with DDIM-10 from the shipped checkpoint are saved as a 62×62 PNG grid', async () => {
    const checkpoint =
      process.env.DDPM_E2E_CHECKPOINT || path.join(extension().extensionPath, 'models', 'mnist.safetensors');
    console.log(`checkpoint: ${checkpoint}${process.env.DDPM_E2E_CHECKPOINT ? ' (DDPM_E2E_CHECKPOINT)' : ''}`);
    assert.ok(fs.existsSync(checkpoint), `checkpoint ${checkpoint} does not exist`);
    const saveTo = path.join(tempDir('sample'), 'grid.png');
    const t0 = Date.now();
    const r = await exec('ddpm.sample', { checkpoint, n: 4, sampler: 'ddim', steps: 10, seed: 7, saveTo });
    console.log(`ddpm.sample -> ${JSON.stringify(r)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.ok(r && typeof r === 'object', `result ${JSON.stringify(r)}`);
    assert.strictEqual(r.images, 4);
    assert.ok(typeof r.seconds === 'number' && r.seconds > 0, `seconds ${r.seconds}`);
    assert.strictEqual(r.grid, saveTo);
    assert.ok(fs.existsSync(saveTo), `${saveTo} was not written`);
    const png = pngInfo(fs.readFileSync(saveTo));
    // 2×2 grid of 28-px digits with 2-px padding: 2 + 2·(28 + 2) = 62.
    assert.deepStrictEqual({ width: png.width, height: png.height }, { width: 62, height: 62 });
  });

  test('without saveTo the grid is not written and grid is null', async () => {
    const checkpoint =
      process.env.DDPM_E2E_CHECKPOINT || path.join(extension().extensionPath, 'models', 'mnist.safetensors');
    assert.ok(fs.existsSync(checkpoint), `checkpoint ${checkpoint} does not exist`);
    const r = await exec('ddpm.sample', { checkpoint, n: 1, sampler: 'ddim', steps: 2, seed: 1 });
    assert.ok(r && typeof r === 'object', `result ${JSON.stringify(r)}`);
    assert.strictEqual(r.grid, null);
    assert.strictEqual(r.images, 1);
  });
});
