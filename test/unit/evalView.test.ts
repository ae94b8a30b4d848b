// The pure pieces of the Training view's new plots and the inspector's evaluations: the loss by quarter of t (its
// smoothing, downsampling and legend), the held-out evaluations, the eval file's read/merge/write, the formatting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EvalHistory,
  LossHistory,
  quarterLabels,
  quarterRanges,
  smoothForPlot,
  smoothSeries,
} from '../../webview/shared/lossSeries.ts';
import {
  EVAL_FILE_FORMAT,
  entryLabel,
  evalFileName,
  evalKeyOf,
  evalSummaryRows,
  formatBits,
  formatBpd,
  mergeEval,
  parseEvalFile,
  perTSeries,
  qualityAvailable,
  serializeEvalFile,
  decadeTicks,
  formatLogTick,
  type EvalEntry,
} from '../../webview/shared/evalResults.ts';
import type { EvaluateResult } from '../../sidecar/protocol.ts';

test('quarters of t: the ranges lossByQuarter uses, and the legend in terms of T', () => {
  assert.deepEqual(quarterRanges(1000), [
    { from: 0, to: 249 },
    { from: 250, to: 499 },
    { from: 500, to: 749 },
    { from: 750, to: 999 },
  ]);
  assert.deepEqual(quarterLabels(1000), ['t < 250', 't 250–499', 't 500–749', 't ≥ 750']);
  assert.deepEqual(quarterLabels(10), ['t < 2', 't 2–4', 't 5–6', 't ≥ 7']);
});

test('the loss by quarter: kept per step, smoothed as the loss is, gaps before the first value', () => {
  const h = new LossHistory(100);
  h.add(1, 1, [null, 2, null, 4]);
  h.add(2, 1, [1, 2, null, 4]);
  h.add(3, 1, [1, null, null, 2]);
  const s = h.series();
  assert.deepEqual(s.quarters[0], [null, 1, 1]);
  assert.deepEqual(s.quarters[2], [null, null, null]);
  assert.deepEqual(s.quarterSmooth[0], [null, 1, 1], 'no value yet: a gap, then smoothed');
  assert.deepEqual(s.quarterSmooth[2], [null, null, null]);
  assert.deepEqual(s.quarterSmooth[1], [2, 2, 2], 'a missing value holds the smoothed one');
  assert.deepEqual(s.quarterSmooth[3], smoothSeries([4, 4, 2]));
  assert.ok(h.hasQuarters);
  // A resumed run replaces the tail; a point without quarters (an older sidecar) has none.
  h.add(2, 5);
  assert.deepEqual(h.series().steps, [1, 2]);
  assert.deepEqual(h.quarterRows()[1], [null, null, null, null]);
  assert.deepEqual(smoothForPlot([NaN, 1]), [null, 1]);
  const old = new LossHistory();
  old.replace([1, 2], [3, 2]);
  assert.equal(old.hasQuarters, false);
  old.replace(
    [1, 2],
    [3, 2],
    [
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ],
  );
  assert.equal(old.hasQuarters, true);
});

test('downsampling averages the quarters of a pair, ignoring missing ones', () => {
  const h = new LossHistory(10);
  for (let i = 1; i <= 11; i++) h.add(i, i, [i, i % 2 ? null : i, null, 1]);
  const s = h.series();
  assert.equal(s.steps.length, s.quarters[0].length);
  assert.ok(s.steps.length <= 10);
  assert.equal(s.quarters[0][0], 1.5, 'mean of steps 1 and 2');
  assert.equal(s.quarters[1][0], 2, 'step 1 had none: step 2 alone');
  assert.equal(s.quarters[2][0], null);
  assert.equal(s.quarters[3][0], 1);
});

test('held-out evaluations: one point per step, a resumed run replaces the tail', () => {
  const e = new EvalHistory();
  e.add(10, 0.5);
  e.add(20, 0.4);
  e.add(30, 0.3);
  e.add(20, 0.41);
  assert.deepEqual(e.series(), { steps: [10, 20], loss: [0.5, 0.41] });
  const f = new EvalHistory();
  f.replace(e.all());
  assert.equal(f.size, 2);
});

function result(o: Partial<EvaluateResult> = {}): EvaluateResult {
  const T = 8;
  return {
    checkpoint: '/ws/ckpt.safetensors',
    step: 20,
    weights: 'ema',
    data: { source: 'mnist', split: 'test' },
    images: [0, 1],
    n: 2,
    T,
    seed: 0,
    bpd: {
      mean: 5.4321,
      stderr: 0.0123,
      prior: 2.7e-5,
      decoder: 1.5,
      kl: 3.9,
      perImage: [5.4, 5.46],
      variance: 'fixedlarge',
      clip: true,
      perT: {
        vb: [1.5, 0.5, 0, 0.4, 0.3, 0.2, 0.1, 0.05],
        x0Mse: Array.from({ length: T }, (_, t) => 0.01 * (t + 1)),
        epsMse: Array.from({ length: T }, () => 0.9),
      },
      quarters: [],
    },
    quality: null,
    forwardPasses: 16,
    threads: 1,
    backend: { name: 'wasm', device: 'WebAssembly' },
    seconds: 1.25,
    ...o,
  };
}
const entry = (at: string, o: Partial<EvaluateResult> = {}): EvalEntry => {
  const r = result(o);
  return { key: evalKeyOf(r), at, result: r };
};

test('the eval file: named after the checkpoint; read tolerantly; merged by key, newest first; round trip', () => {
  assert.equal(evalFileName('mnist.safetensors'), 'mnist.eval.json');
  assert.equal(evalFileName('run.SAFETENSORS'), 'run.eval.json');
  assert.equal(evalFileName('weights'), 'weights.eval.json');
  for (const bad of [
    undefined,
    '',
    'not json',
    '{"format":"other","entries":[]}',
    '[]',
    '{"format":"ddpm-studio-eval/1"}',
  ])
    assert.deepEqual(parseEvalFile(bad, 'c.safetensors').entries, [], String(bad));

  let f = parseEvalFile(undefined, 'c.safetensors');
  const a = entry('2025-01-01T10:00:00.000Z');
  const b = entry('2025-01-01T11:00:00.000Z', { n: 4 });
  const c = entry('2025-01-01T12:00:00.000Z', { seed: 1 });
  f = mergeEval(mergeEval(mergeEval(f, a), b), c);
  assert.deepEqual(
    f.entries.map((e) => e.at),
    [c.at, b.at, a.at],
  );
  // The same (data, n, seed, quality) again replaces the older one.
  const a2 = entry('2025-01-02T09:00:00.000Z');
  f = mergeEval(f, a2);
  assert.deepEqual(
    f.entries.map((e) => e.at),
    [a2.at, c.at, b.at],
  );
  assert.equal(mergeEval(f, entry('2025-01-03T00:00:00.000Z', { quality: null, seed: 9 }), 2).entries.length, 2);
  const text = serializeEvalFile(f);
  assert.ok(text.endsWith('\n'));
  const back = parseEvalFile(text, 'c.safetensors');
  assert.equal(back.format, EVAL_FILE_FORMAT);
  assert.deepEqual(back.entries, f.entries);
  // Entries sorted newest first whatever the order in the file; malformed entries dropped.
  const shuffled = JSON.parse(text) as { entries: unknown[] };
  shuffled.entries.reverse();
  shuffled.entries.push({ key: { data: 1 }, at: 'x', result: {} });
  assert.deepEqual(
    parseEvalFile(JSON.stringify(shuffled), 'c.safetensors').entries.map((e) => e.at),
    [a2.at, c.at, b.at],
  );
});

test("the result's formatting: bits/dim ± standard error, the terms, quality, the per-t curve for a log scale", () => {
  assert.equal(formatBpd(2.1712, 0.0412), '2.171 ± 0.041 bits/dim');
  assert.equal(formatBpd(2.1712, null), '2.171 bits/dim');
  assert.equal(formatBits(2.7e-5), '2.7e-5');
  assert.equal(formatBits(0), '0.000');
  const rows = Object.fromEntries(evalSummaryRows(result()).map((r) => [r.label, r.value]));
  assert.equal(rows['bits/dim'], '5.432 ± 0.012 bits/dim');
  assert.equal(rows['prior L_T'], '2.7e-5 bits/dim');
  assert.equal(rows['decoder L_0'], '1.500 bits/dim');
  assert.equal(rows['data'], 'mnist: 2 held-out images, seed 0, ema weights');
  assert.equal(rows['cost'], '16 forward passes, 1.3 s on wasm');
  assert.equal(rows['mean confidence'], undefined);
  const q = result({
    bpd: null,
    forwardPasses: 0,
    data: { source: 'folder:/x', split: 'all' },
    quality: {
      n: 64,
      sampling: { sampler: 'ddim', steps: 50, eta: 0, seed: 0 },
      classifier: { file: 'c', source: 'mnist', heldOutAccuracy: 0.98 },
      classes: ['0', '1'],
      meanConfidence: 0.8766,
      classHistogram: [0.25, 0.75],
      coverage: 2,
      coverageThreshold: 0.15,
      frechetDistance: 12.3456,
      realImages: 1000,
      seconds: 3,
    },
  });
  const qr = Object.fromEntries(evalSummaryRows(q).map((r) => [r.label, r.value]));
  assert.equal(qr['bits/dim'], undefined);
  assert.equal(qr['mean confidence'], '87.7 %');
  assert.equal(qr['coverage'], '2 of 2 classes (≥ 15.0 % of the images each)');
  assert.equal(qr['Fréchet distance'], '12.35 (classifier features, 64 samples vs 1000 real)');
  assert.match(qr['data'], /no held-out part/);
  assert.deepEqual(perTSeries(q), [[], [], [], []]);
  const [t, vb, x0, eps] = perTSeries(result());
  assert.deepEqual(t, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(vb[2], null, 'a zero term is a gap on a log scale');
  assert.equal(vb[0], 1.5);
  assert.equal(x0[7], 0.08);
  assert.equal(eps.length, 8);
  assert.match(entryLabel(entry('2025-01-01T10:00:00.000Z')), /^2025-01-01 10:00 · mnist · n 2 · seed 0 · 5\.432/);
});

test('sample quality is offered where a classifier exists: mnist and Fashion-MNIST IDX files', () => {
  assert.equal(qualityAvailable('mnist'), true);
  assert.equal(qualityAvailable('idx:/data/fashion-mnist/train-images-idx3-ubyte.gz'), true);
  assert.equal(qualityAvailable('idx:/data/kmnist/train-images.gz'), false);
  assert.equal(qualityAvailable('folder:/fashion'), false);
  assert.equal(qualityAvailable('cifar10:/c'), false);
  assert.equal(qualityAvailable(undefined), false);
});

test("the per-t plot's log axis: one tick per decade, labelled 0.01 … 1000 or in exponent form", () => {
  assert.deepEqual(decadeTicks(2e-5, 3), [1e-4, 1e-3, 1e-2, 1e-1, 1]);
  assert.deepEqual(decadeTicks(0.5, 0.9), []);
  assert.deepEqual(decadeTicks(0, 1), []);
  assert.deepEqual(decadeTicks(1, 100).length, 3);
  assert.deepEqual([1e-5, 1e-3, 0.01, 0.1, 1, 10, 1e4].map(formatLogTick), [
    '1e-5',
    '1e-3',
    '0.01',
    '0.1',
    '1',
    '10',
    '1e+4',
  ]);
});
