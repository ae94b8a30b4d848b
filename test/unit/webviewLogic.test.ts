// The webviews' pure logic: the trajectory timeline (live follow vs scrubbing), step rate, loss series smoothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timeline, stepRate } from '../../webview/shared/timeline.ts';
import { LossHistory, smoothSeries } from '../../webview/shared/lossSeries.ts';

const frame = (index: number) => ({ index, t: 1000 - index * 100, xt: `xt${index}`, x0: `x0${index}` });

test('timeline follows new frames while live, stays put when scrubbed back, resumes at the end', () => {
  const tl = new Timeline();
  const none: unknown = tl.current;
  assert.equal(none, undefined);
  tl.add(frame(0));
  tl.add(frame(2));
  assert.equal(tl.current?.index, 2);
  assert.equal(tl.select(0)?.index, 0);
  assert.equal(tl.live, false);
  tl.add(frame(4));
  assert.equal(tl.current?.index, 0, 'scrubbed back: new frames do not move the view');
  assert.equal(tl.select(99)?.index, 4, 'clamped to the newest');
  assert.equal(tl.live, true);
  tl.add(frame(6));
  assert.equal(tl.current?.index, 6);
  tl.add(frame(5));
  assert.deepEqual(tl.all().map((f) => f.index), [0, 2, 4, 5, 6], 'a late frame is put in order');
  tl.add({ ...frame(5), xt: 'new' });
  assert.equal(tl.length, 5, 'a repeated frame replaces the old one');
  tl.clear();
  assert.equal(tl.length, 0);
  assert.equal(tl.select(3), undefined);
});

test('step rate over the recent window', () => {
  assert.equal(stepRate([]), 0);
  assert.equal(stepRate([1000]), 0);
  assert.equal(stepRate([0, 500, 1000, 1500, 2000]), 2);
  const times = Array.from({ length: 30 }, (_, i) => (i < 20 ? i * 1000 : 19_000 + (i - 19) * 100));
  assert.ok(Math.abs(stepRate(times, 10) - 10) < 1e-9, 'only the last 10 timestamps count');
});

test('loss smoothing is bias-corrected and skips non-finite values', () => {
  assert.deepEqual(smoothSeries([]), []);
  const s = smoothSeries([1, 1, 1, 1]);
  assert.ok(s.every((v) => Math.abs(v - 1) < 1e-12), 'a constant series stays constant from the first point');
  const step = smoothSeries([0, 0, 0, 10], 0.5);
  assert.ok(step[3] > 0 && step[3] < 10);
  const withNaN = smoothSeries([2, NaN, 2]);
  assert.equal(withNaN[1], withNaN[0]);
});

test('loss history: resumed runs replace the tail, long runs stay bounded and keep their ends', () => {
  const h = new LossHistory(100);
  for (let i = 1; i <= 50; i++) h.add(i, 1 / i);
  h.add(30, 0.5);
  assert.equal(h.size, 30, 'a step at or before the last replaces the tail');
  assert.equal(h.series().raw.at(-1), 0.5);
  const big = new LossHistory(100);
  for (let i = 1; i <= 1000; i++) big.add(i, i);
  assert.ok(big.size <= 100, `${big.size} points`);
  const s = big.series();
  assert.equal(s.steps.at(-1), 1000);
  assert.deepEqual(s.steps, [...s.steps].sort((a, b) => a - b));
  assert.equal(s.smooth.length, s.raw.length);
});

import { buildTable, moduleOf, paramsOf } from '../../webview/shared/tensorTable.ts';

test('tensor table: grouped by module path, numeric name order, filter, sort by params', () => {
  const rows = [
    { name: 'model.down.10.res.0.conv1.weight', dtype: 'F32', shape: [3, 3, 4, 8] },
    { name: 'model.down.2.res.0.conv1.weight', dtype: 'F32', shape: [3, 3, 4, 4] },
    { name: 'model.down.2.res.0.conv1.bias', dtype: 'F32', shape: [4] },
    { name: 'ema.conv_out.weight', dtype: 'F16', shape: [3, 3, 64, 1] },
    { name: 'step', dtype: 'I64', shape: [] },
  ];
  assert.equal(moduleOf('model.down.2.res.0.conv1.bias'), 'model.down.2.res.0.conv1');
  assert.equal(moduleOf('step'), '');
  assert.equal(paramsOf([]), 1);
  const t = buildTable(rows);
  assert.deepEqual(t.map((g) => g.module), ['', 'ema.conv_out', 'model.down.2.res.0.conv1', 'model.down.10.res.0.conv1']);
  const g2 = t.find((g) => g.module === 'model.down.2.res.0.conv1')!;
  assert.deepEqual(g2.rows.map((r) => r.leaf), ['bias', 'weight']);
  assert.equal(g2.params, 3 * 3 * 4 * 4 + 4);
  assert.deepEqual(buildTable(rows, 'CONV1').map((g) => g.rows.length), [2, 1]);
  assert.deepEqual(buildTable(rows, 'f16').map((g) => g.module), ['ema.conv_out'], 'a dtype filter');
  assert.deepEqual(buildTable(rows, '', 'params', true).map((g) => g.module)[0], 'ema.conv_out');
  assert.deepEqual(buildTable(rows, 'nothing-matches'), []);
});

import { lambdaValues } from '../../webview/shared/lambdas.ts';

test('interpolation λ values: evenly spaced from 0 to 1, endpoints exact', () => {
  assert.deepEqual(lambdaValues(5), [0, 0.25, 0.5, 0.75, 1]);
  const nine = lambdaValues(9);
  assert.equal(nine.length, 9);
  assert.equal(nine[0], 0);
  assert.equal(nine[8], 1);
  assert.deepEqual(lambdaValues(1), [0.5]);
});
