'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { workspaceRoot, tempDir, waitFor, sleep, safetensorsHeader, exec, waitTrainingIdle } = require('./helpers');

function checkCheckpoint(file) {
  const header = safetensorsHeader(file);
  assert.ok(header.__metadata__, 'safetensors header has __metadata__');
  assert.strictEqual(header.__metadata__.format, 'ddpm-studio/1');
  return header;
}

suite('Training (ddpm.train / ddpm.stop)', () => {
  test('a tiny model trains 20 steps on the workspace folder and saves latest.safetensors', async () => {
    const data = `folder:${path.join(workspaceRoot(), 'digits')}`;
    const out = tempDir('train');
    const t0 = Date.now();
    const r = await exec('ddpm.train', { data, preset: 'tiny', steps: 20, batch: 4, out });
    assert.ok(r && typeof r.jobId !== 'undefined', `ddpm.train returned ${JSON.stringify(r)}`);
    assert.strictEqual(r.backend.name, 'wasm');
    assert.match(r.backend.device, /WebAssembly/);
    const latest = path.join(out, 'latest.safetensors');
    await waitFor(`${latest}`, () => fs.existsSync(latest), 120000);
    await waitTrainingIdle(120000);
    console.log(`20 tiny steps on the fixture folder: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const header = checkCheckpoint(latest);
    const card = typeof header.__metadata__.ddpm === 'string' ? JSON.parse(header.__metadata__.ddpm) : undefined;
    if (card) {
      assert.strictEqual(card.preset, 'tiny');
      assert.strictEqual(card.step, 20);
    }
  });

  test('ddpm.stop ends a long run and returns its checkpoint; a second stop returns undefined', async () => {
    const out = tempDir('stop');
    const r = await exec('ddpm.train', {
      data: `folder:${path.join(workspaceRoot(), 'digits')}`,
      preset: 'tiny',
      steps: 100000,
      batch: 4,
      out,
    });
    assert.ok(r && typeof r.jobId !== 'undefined', `ddpm.train returned ${JSON.stringify(r)}`);
    await sleep(3000);
    const stopped = await exec('ddpm.stop');
    console.log(`ddpm.stop -> ${JSON.stringify(stopped)}`);
    assert.ok(stopped && typeof stopped === 'object', `ddpm.stop returned ${JSON.stringify(stopped)}`);
    assert.ok(Number.isInteger(stopped.step) && stopped.step >= 1 && stopped.step < 100000, `step ${stopped.step}`);
    assert.strictEqual(typeof stopped.checkpoint, 'string');
    assert.ok(fs.existsSync(stopped.checkpoint), `${stopped.checkpoint} does not exist`);
    assert.strictEqual(path.dirname(path.resolve(stopped.checkpoint)), path.resolve(out));
    checkCheckpoint(stopped.checkpoint);
    await waitTrainingIdle(30000);
    assert.strictEqual(await exec('ddpm.stop'), undefined);
  });
});
