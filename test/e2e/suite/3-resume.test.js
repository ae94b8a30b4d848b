'use strict';
// DDPM: Resume Training from code (the palette's pick and the views' buttons are driven in ui.mjs): a stopped run goes
// on from its checkpoint in the same folder, its loss log continuing where it was.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { extension, workspaceRoot, tempDir, safetensorsHeader, exec, waitTrainingIdle } = require('./helpers');

const stepOf = (file) => JSON.parse(safetensorsHeader(file).__metadata__.ddpm).step;
const lossSteps = (out) =>
  fs
    .readFileSync(path.join(out, 'loss.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => Number(l.split(',')[0]));

suite('Resume (ddpm.resumeTraining)', () => {
  // Run alone (--grep), this suite may come before anything has activated the extension.
  suiteSetup(() => extension().activate());

  test('a finished run resumed to more steps continues from its checkpoint; its loss log runs 1…N unbroken', async () => {
    const out = tempDir('resume');
    const data = `folder:${path.join(workspaceRoot(), 'digits')}`;
    await exec('ddpm.train', { data, preset: 'tiny', steps: 6, batch: 4, out });
    await waitTrainingIdle(120000);
    const latest = path.join(out, 'latest.safetensors');
    assert.strictEqual(stepOf(latest), 6);
    const r = await exec('ddpm.resumeTraining', { out, steps: 12 });
    assert.ok(r && typeof r.jobId === 'string', `ddpm.resumeTraining returned ${JSON.stringify(r)}`);
    await waitTrainingIdle(120000);
    assert.strictEqual(stepOf(latest), 12);
    assert.deepStrictEqual(lossSteps(out), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // The run's record names what Resume starts again.
    const run = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
    assert.strictEqual(run.data, data);
    assert.strictEqual(run.steps, 12);
  });

  test('a weights-only or missing checkpoint is refused in words and starts nothing', async () => {
    const out = tempDir('resume-none');
    assert.strictEqual(await exec('ddpm.resumeTraining', { out, steps: 10 }), undefined);
    assert.ok(!fs.existsSync(path.join(out, 'loss.csv')));
    assert.strictEqual((await exec('ddpm.info')).training, null);
  });
});
