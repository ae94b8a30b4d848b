// ddpm/trainRun's reading of a run folder (sidecar/jobs/trainRun.ts): loss.csv thinned evenly with its last row kept,
// a row cut short by a crash skipped, the quarter columns; eval.csv; the newest preview; the checkpoints in order;
// run.json; and no run where there is none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HISTORY_POINTS, readLossCsv, trainRunState } from '../../sidecar/jobs/trainRun.ts';
import { TrainingSlot } from '../../sidecar/jobs/trainSession.ts';

const HEADER = 'step,loss,grad_norm,lr,seconds,loss_q1,loss_q2,loss_q3,loss_q4\n';

function folder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-trainrun-'));
}

test('loss.csv: every row up to the limit; beyond it evenly thinned, the last row kept; a cut-short row skipped', () => {
  const dir = folder();
  try {
    const file = path.join(dir, 'loss.csv');
    const row = (s: number) => `${s},${1 / s},0.5,0.0002,${s / 10},${s % 2 ? 0.1 : ''},0.2,,0.4\n`;
    fs.writeFileSync(file, HEADER + [1, 2, 3].map(row).join('') + '4,0.');
    const small = readLossCsv(file);
    assert.deepEqual(small.steps, [1, 2, 3]);
    assert.deepEqual(small.loss, [1, 0.5, 1 / 3]);
    assert.deepEqual(small.quarters, [
      [0.1, null, 0.1],
      [0.2, 0.2, 0.2],
      [null, null, null],
      [0.4, 0.4, 0.4],
    ]);

    const n = 10_001;
    fs.writeFileSync(file, HEADER + Array.from({ length: n }, (_, i) => row(i + 1)).join(''));
    const big = readLossCsv(file);
    // Stride ⌈10001 / 4000⌉ = 3: rows 1, 4, 7, …, 10000, then the last one, 10001.
    assert.equal(big.steps.length, Math.ceil(n / 3) + 1);
    assert.ok(big.steps.length <= HISTORY_POINTS + 1);
    assert.deepEqual(big.steps.slice(0, 3), [1, 4, 7]);
    assert.deepEqual(big.steps.slice(-2), [10_000, 10_001]);
    assert.equal(big.quarters[0].length, big.steps.length);
    assert.deepEqual(readLossCsv(path.join(dir, 'missing.csv')), { steps: [], loss: [], quarters: [[], [], [], []] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a run folder without a job: its history, evals, newest preview, checkpoints in order and run.json', () => {
  const dir = folder();
  try {
    const slot = new TrainingSlot();
    assert.equal(trainRunState(slot), null, 'no job and no folder: no run');
    assert.equal(trainRunState(slot, dir), null, 'an empty folder holds no run');
    fs.writeFileSync(path.join(dir, 'loss.csv'), HEADER + '1,0.9,1,1,1,,,,\n2,0.8,1,1,1,,,,\n');
    fs.writeFileSync(path.join(dir, 'eval.csv'), 'step,loss,t50\n2,0.7,0.7\n');
    fs.mkdirSync(path.join(dir, 'samples'));
    fs.writeFileSync(path.join(dir, 'samples', 'step-0000001.png'), Buffer.from('one'));
    fs.writeFileSync(path.join(dir, 'samples', 'step-0000002.png'), Buffer.from('two'));
    for (const s of [10, 2]) fs.writeFileSync(path.join(dir, `ckpt-${String(s).padStart(7, '0')}.safetensors`), '');
    fs.writeFileSync(
      path.join(dir, 'run.json'),
      JSON.stringify({ data: 'mnist', preset: 'tiny', steps: 50, batch: 4 }),
    );
    const run = trainRunState(slot, dir);
    assert.ok(run);
    assert.equal(run.job, null);
    assert.equal(run.ended, null);
    assert.deepEqual([run.data, run.preset, run.steps, run.batch], ['mnist', 'tiny', 50, 4]);
    assert.equal(run.step, 2, 'no latest checkpoint: the last step of the loss log');
    assert.deepEqual(run.history.steps, [1, 2]);
    assert.deepEqual(run.evals, [{ step: 2, loss: 0.7 }]);
    assert.deepEqual(run.preview && { step: run.preview.step, png: run.preview.png }, {
      step: 2,
      png: Buffer.from('two').toString('base64'),
    });
    assert.deepEqual(
      run.checkpoints.map((c) => c.step),
      [2, 10],
    );
    assert.equal(run.latest, null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
