// The training step learns: a tiny model overfits a fixed batch (250 steps, ~20 s on one core; the step's pieces are
// checked one by one in test/unit/train.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../sidecar/backend.ts';
import { mean, setupTiny, squares } from '../helpers/training.ts';

test('a tiny model overfits a fixed batch of 8 images: the loss falls by at least 5×', async () => {
  await initBackend('auto');
  const { trainer, dispose } = setupTiny(1, { lr: 1e-3, warmupSteps: 0, emaDecay: 0.99, randomFlip: false });
  const x0 = squares();
  const losses: number[] = [];
  for (let s = 0; s < 250; s++) losses.push((await trainer.trainStep(x0)).loss);
  const first = mean(losses.slice(0, 10));
  const last = mean(losses.slice(-30));
  assert.ok(first > 0.5, `initial loss ${first} (a zero-output model has loss ≈ 1)`);
  assert.ok(
    first / last >= 5,
    `loss fell only ${(first / last).toFixed(2)}× (${first.toFixed(4)} → ${last.toFixed(4)})`,
  );
  assert.equal(trainer.step, 250);
  x0.dispose();
  dispose();
});
