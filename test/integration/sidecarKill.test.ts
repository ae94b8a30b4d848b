// kill -9 during training, at random moments (including mid-checkpoint), never leaves a corrupt `latest`, and a new
// sidecar resumes from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, releasePipes, startSidecar } from '../helpers/sidecarClient.ts';
import {
  CheckpointSavedNotification,
  JobEndedNotification,
  TrainProgressNotification,
  TrainRequest,
  TrainStopRequest,
} from '../../sidecar/protocol.ts';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

test('kill -9 five times during training with a checkpoint every step; latest always loads; resume continues', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-kill-'));
  const rng = new Rng(99);
  let lastStep = 0;
  try {
    for (let round = 0; round < 5; round++) {
      const sc = startSidecar();
      let saves = 0;
      sc.connection.onNotification(CheckpointSavedNotification, () => saves++);
      const resumedFrom = new Promise<number>((resolve) =>
        sc.connection.onNotification(TrainProgressNotification, (p) => resolve(p.step - 1)),
      );
      await sc.connection.sendRequest(TrainRequest, {
        data: 'mnist',
        preset: 'tiny',
        steps: 100000,
        batch: 2,
        out,
        saveEvery: 1,
        keep: 2,
        resume: round > 0,
        lr: 1e-3,
        warmup: 5,
      });
      const first = await resumedFrom;
      if (round > 0)
        assert.ok(first >= lastStep, `round ${round}: resumed at ${first}, the previous latest was step ${lastStep}`);
      // Let it save a few checkpoints, then kill it at a random moment (often in the middle of a save).
      while (saves < 3) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, rng.int(200)));
      sc.child.kill('SIGKILL');
      await exited(sc.child);
      sc.connection.dispose();
      releasePipes(sc.child);
      const ck = loadCheckpoint(path.join(out, 'latest.safetensors'));
      assert.equal(ck.meta.kind, 'training');
      assert.ok(ck.meta.step >= lastStep + 3, `round ${round}: latest is step ${ck.meta.step}`);
      assert.ok(ck.groups['adam.v'] && ck.groups['adam.v'].size > 0);
      lastStep = ck.meta.step;
    }
    // A final clean run resumes from the last latest and stops normally.
    const sc = startSidecar();
    const ended = new Promise<{ reason: string }>((r) => sc.connection.onNotification(JobEndedNotification, r));
    const { jobId } = await sc.connection.sendRequest(TrainRequest, {
      data: 'mnist',
      preset: 'tiny',
      steps: 100000,
      batch: 2,
      out,
      saveEvery: 0,
      resume: true,
    });
    const stop = await sc.connection.sendRequest(TrainStopRequest, { jobId });
    assert.ok(stop.step > lastStep);
    assert.equal((await ended).reason, 'stopped');
    assert.deepEqual(
      fs.readdirSync(out).filter((f) => f.endsWith('.tmp')),
      [],
      'stale temporary files are cleaned up',
    );
    await sc.close();
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
