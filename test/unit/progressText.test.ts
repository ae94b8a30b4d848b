// The Trajectory view's progress line (webview/shared/timeline.ts stepProgressText): steps/s or s/step, time left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepProgressText } from '../../webview/shared/timeline.ts';

test('fast runs in steps per second, slow ones (256×256 on a CPU) in seconds per step, with the time left', () => {
  assert.equal(stepProgressText(1, 50, 0), 'step 1/50');
  assert.equal(stepProgressText(12, 50, 2.5), 'step 12/50 · 2.5 steps/s · 16 s left');
  assert.equal(stepProgressText(10, 50, 1 / 27.1), 'step 10/50 · 27.1 s/step · 18 min left');
  assert.equal(stepProgressText(1, 1000, 1 / 30), 'step 1/1000 · 30.0 s/step · 8.3 h left');
  assert.equal(stepProgressText(50, 50, 3), 'step 50/50 · 3.0 steps/s');
});
