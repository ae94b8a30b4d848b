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
  assert.deepEqual(
    tl.all().map((f) => f.index),
    [0, 2, 4, 5, 6],
    'a late frame is put in order',
  );
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
  assert.ok(
    s.every((v) => Math.abs(v - 1) < 1e-12),
    'a constant series stays constant from the first point',
  );
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
  assert.deepEqual(
    s.steps,
    [...s.steps].sort((a, b) => a - b),
  );
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
  assert.deepEqual(
    t.map((g) => g.module),
    ['', 'ema.conv_out', 'model.down.2.res.0.conv1', 'model.down.10.res.0.conv1'],
  );
  const g2 = t.find((g) => g.module === 'model.down.2.res.0.conv1')!;
  assert.deepEqual(
    g2.rows.map((r) => r.leaf),
    ['bias', 'weight'],
  );
  assert.equal(g2.params, 3 * 3 * 4 * 4 + 4);
  assert.deepEqual(
    buildTable(rows, 'CONV1').map((g) => g.rows.length),
    [2, 1],
  );
  assert.deepEqual(
    buildTable(rows, 'f16').map((g) => g.module),
    ['ema.conv_out'],
    'a dtype filter',
  );
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

// ---- views: markup (webview/<view>/index.html), the document around it, restorable state ----------------------------

import fs from 'node:fs';
import path from 'node:path';
import { contentSecurityPolicy, escapeHtml, webviewDocument } from '../../extension/panels/webviewDocument.ts';

const WEBVIEW = path.join(import.meta.dirname, '..', '..', 'webview');
const EXTENSION = path.join(import.meta.dirname, '..', '..', 'extension');
/** The views: the folders of webview/ with a main.ts (scripts/build.mjs bundles each as dist/webview/<view>.js). */
const views = fs.readdirSync(WEBVIEW).filter((d) => fs.existsSync(path.join(WEBVIEW, d, 'main.ts')));
const read = (...p: string[]) => fs.readFileSync(path.join(...p), 'utf8');
const sourcesUnder = (dir: string): string[] =>
  fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));

test('every view has its markup beside its script, and the markup has every element the script looks up', () => {
  assert.deepEqual([...views].sort(), ['checkpoint', 'edit', 'interpolate', 'training', 'trajectory']);
  for (const view of views) {
    const markup = read(WEBVIEW, view, 'index.html');
    // A fragment: the document, its CSP and the script tag come from webviewDocument().
    assert.doesNotMatch(markup, /<(!doctype|html|head|body|script)\b/i, `${view}: index.html is a body fragment`);
    // The CSP lets in only our nonce'd script and our stylesheets: inline handlers and style attributes would not work.
    assert.doesNotMatch(markup, /\son[a-z]+\s*=|\sstyle\s*=/i, `${view}: no inline event handlers or styles`);
    const ids = new Set([...markup.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
    const script = sourcesUnder(path.join(WEBVIEW, view))
      .map((f) => read(f))
      .join('\n');
    // Lookups by a literal id: byId('x', …), $('x'), $<T>('x'), and the lists a script loops over: for (const id of ['x', …]).
    const looked = [...script.matchAll(/(?:byId|\$)(?:<[^>()]*>)?\(\s*'([^']+)'/g)].map((m) => m[1]);
    for (const list of script.matchAll(/for \(const id of \[([^\]]*)\]\)/g))
      looked.push(...[...list[1].matchAll(/'([^']+)'/g)].map((m) => m[1]));
    assert.ok(looked.length > 3, `${view}: found the script's lookups`);
    for (const id of looked) assert.ok(ids.has(id), `${view}: main.ts looks up #${id}, which index.html does not have`);
  }
});

test("each view's markup is imported by one extension module, which names the view by its folder", () => {
  const imports = new Map<string, string[]>();
  for (const file of sourcesUnder(EXTENSION)) {
    const text = read(file);
    for (const m of text.matchAll(/^import \w+ from '([^']+\/webview\/(\w+)\/index\.html)';$/gm)) {
      assert.ok(fs.existsSync(path.resolve(path.dirname(file), m[1])), `${file}: ${m[1]} does not exist`);
      assert.match(
        text,
        new RegExp(`name: '${m[2]}'`),
        `${file} imports the ${m[2]} markup: its view is named '${m[2]}' (the bundle's name)`,
      );
      imports.set(m[2], [...(imports.get(m[2]) ?? []), path.relative(EXTENSION, file)]);
    }
  }
  for (const view of views)
    assert.equal(imports.get(view)?.length, 1, `${view}: imported by ${JSON.stringify(imports.get(view))}`);
});

test('the webview document: strict CSP with the nonce, our script and stylesheet only, the markup in the body', () => {
  const nonce = 'bm9uY2Ugbm9uY2Ugbm9uY2U=';
  const cspSource = 'https://file+.vscode-resource.vscode-cdn.net';
  const markup = read(WEBVIEW, 'trajectory', 'index.html');
  const html = webviewDocument({
    nonce,
    cspSource,
    script: `${cspSource}/ext/dist/webview/trajectory.js`,
    style: `${cspSource}/ext/dist/webview/trajectory.css`,
    title: 'DDPM Trajectory: <a&b>.safetensors',
    markup,
  });
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
  assert.equal(csp, contentSecurityPolicy(cspSource, nonce));
  assert.deepEqual(csp?.split('; '), [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
  ]);
  assert.ok(!/unsafe-(inline|eval)/.test(html), 'nothing unsafe');
  const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]);
  assert.deepEqual(
    scripts,
    [` nonce="${nonce}" src="${cspSource}/ext/dist/webview/trajectory.js"`],
    'one script, ours, with the nonce',
  );
  assert.ok(html.includes(`<link rel="stylesheet" href="${cspSource}/ext/dist/webview/trajectory.css">`));
  assert.ok(html.includes('<title>DDPM Trajectory: &#60;a&#38;b&#62;.safetensors</title>'), 'the title is escaped');
  assert.ok(html.includes(`<body data-state="idle">\n${markup}`), 'the markup is the body');
  assert.equal(escapeHtml(`"x" & 'y'`), '&#34;x&#34; &#38; &#39;y&#39;');
});

import { isOurs, modelCard } from '../../webview/checkpoint/modelCard.ts';
import type { InspectResult } from '../../sidecar/protocol.ts';

test("the inspector's model card: our checkpoint, and a foreign safetensors file with its metadata", () => {
  const base: InspectResult = {
    path: '/x.safetensors',
    fileSize: 3 * 2 ** 20,
    format: null,
    params: 1234567,
    tensors: [],
    lossHistory: null,
    metadata: {},
  };
  const ours: InspectResult = {
    ...base,
    format: 'ddpm-studio/1',
    kind: 'training',
    preset: 'mnist',
    step: 2000,
    model: {
      imageSize: 28,
      channels: 1,
      ch: 32,
      chMult: [1, 2, 2],
      numResBlocks: 1,
      attnResolutions: [],
      dropout: 0,
      groups: 32,
    },
    schedule: { kind: 'linear', T: 1000 },
    data: { source: 'mnist', size: 60000 },
    backend: 'wasm',
    created: '2025-01-01T00:00:00Z',
  };
  assert.ok(isOurs(ours) && !isOurs(base));
  const card = Object.fromEntries(modelCard(ours).map((r) => [r.label, r.value]));
  assert.deepEqual(card, {
    kind: 'training',
    preset: 'mnist',
    parameters: '1,234,567',
    step: '2000',
    images: '28×28×1',
    architecture: 'ch 32, mult (1,2,2), 1 res blocks, attention at middle only',
    schedule: 'linear, T = 1000',
    dataset: 'mnist (60,000 images)',
    backend: 'wasm',
    created: '2025-01-01T00:00:00Z',
    'file size': '3.0 MB',
  });
  const foreign = modelCard({ ...base, metadata: { format: 'pt', long: 'x'.repeat(300) } });
  assert.deepEqual(
    foreign.map((r) => r.label),
    ['format', 'values', 'file size', 'metadata: format', 'metadata: long'],
  );
  assert.equal(foreign[4].value, `${'x'.repeat(200)}…`);
});

import { isSortKey } from '../../webview/shared/tensorTable.ts';

test('tensor table sort keys', () => {
  assert.ok(['name', 'dtype', 'shape', 'params'].every(isSortKey));
  assert.ok(!isSortKey('size'));
});

import { nextState, restoredState } from '../../webview/interpolate/state.ts';

test('interpolation view state: what a reloaded window restores', () => {
  assert.equal(nextState(undefined, { type: 'progress', row: 0, done: 0.5 }), undefined, 'nothing before start');
  let s = nextState(undefined, {
    type: 'start',
    rows: [250, 500],
    lambdas: [0, 0.5, 1],
    a: 'a.png',
    b: 'b.png',
    checkpoint: 'm.safetensors',
  });
  assert.deepEqual(s, {
    caption: 'a.png ↔ b.png · λ = 0, 0.5, 1 · m.safetensors',
    rows: [250, 500],
    strips: [null, null],
    inputs: null,
    status: '',
    phase: 'running',
  });
  s = nextState(s, { type: 'inputs', a: 'A', b: 'B' });
  const before = s;
  assert.equal(
    nextState(s, { type: 'progress', row: 0, done: 0.5 }),
    before,
    'progress is not kept (no setState per step)',
  );
  s = nextState(s, { type: 'row', row: 1, t: 500, strip: 'S1' });
  assert.deepEqual(s?.strips, [null, 'S1']);
  assert.deepEqual(before?.strips, [null, null], 'states are not mutated');
  assert.equal(restoredState(s!).phase, 'interrupted', 'a run cut by the reload says so');
  assert.match(restoredState(s!).status, /interrupted/);
  s = nextState(s, { type: 'row', row: 0, t: 250, strip: 'S0' });
  s = nextState(s, { type: 'done', seconds: 1.25 });
  assert.deepEqual(s, {
    caption: 'a.png ↔ b.png · λ = 0, 0.5, 1 · m.safetensors',
    rows: [250, 500],
    strips: ['S0', 'S1'],
    inputs: { a: 'A', b: 'B' },
    status: 'done in 1.3 s',
    phase: 'done',
  });
  assert.equal(restoredState(s!), s, 'a finished run comes back as it was');
  assert.deepEqual(nextState(s, { type: 'error', message: 'boom' }), { ...s, status: 'boom', phase: 'error' });
});

import {
  checkpointClasses,
  checkpointSummary,
  choiceText,
  className,
  classesText,
  classWithIndex,
  gridCells,
  gridColumns,
  rowCaptions,
  sampleLabels,
} from '../../webview/shared/classes.ts';
import { startCaption } from '../../webview/trajectory/caption.ts';

const DIGITS = Array.from({ length: 10 }, (_, i) => String(i));
const FASHION = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

test('class labels of a sample: the sidecar’s rule (each: i mod K; a class: all of it; any or no classes: none)', () => {
  assert.deepEqual(sampleLabels(10, 'each', 12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  assert.deepEqual(sampleLabels(3, 'each', 4), [0, 1, 2, 0]);
  assert.deepEqual(sampleLabels(10, 3, 4), [3, 3, 3, 3]);
  assert.deepEqual(sampleLabels(10, 0, 2), [0, 0], 'class 0 is a class');
  assert.equal(sampleLabels(10, 'any', 4), undefined);
  assert.equal(sampleLabels(0, 'each', 4), undefined, 'an unconditional checkpoint has no labels');
  assert.equal(sampleLabels(0, 3, 4), undefined);
});

test('class names: digits by their index, named classes with it when choosing, none for −1', () => {
  assert.equal(className(DIGITS, 7), '7');
  assert.equal(className(FASHION, 7), 'Sneaker');
  assert.equal(className(FASHION, -1), '');
  assert.equal(className(['a'], 4), '4', 'a label past the names shows its index');
  assert.equal(classWithIndex(DIGITS, 7), '7');
  assert.equal(classWithIndex(FASHION, 7), 'Sneaker (7)');
  assert.equal(choiceText('each', DIGITS), 'each class in turn');
  assert.equal(choiceText('any', DIGITS), 'no class (unconditional)');
  assert.equal(choiceText(3, DIGITS), 'class 3');
  assert.equal(choiceText(8, FASHION), 'class Bag (8)');
});

test('row captions follow the grid: ⌈√n⌉ columns, row-major, the last row short', () => {
  assert.deepEqual([1, 2, 4, 5, 9, 10, 16, 17, 64].map(gridColumns), [1, 2, 2, 3, 3, 4, 4, 5, 8]);
  assert.deepEqual(rowCaptions(sampleLabels(10, 'each', 16)!, DIGITS), ['0 1 2 3', '4 5 6 7', '8 9 0 1', '2 3 4 5']);
  assert.deepEqual(rowCaptions(sampleLabels(10, 'each', 5)!, DIGITS), ['0 1 2', '3 4']);
  assert.deepEqual(rowCaptions(sampleLabels(10, 3, 4)!, DIGITS), ['3 3', '3 3']);
  assert.deepEqual(rowCaptions(sampleLabels(10, 'each', 4)!, FASHION), ['T-shirt/top, Trouser', 'Pullover, Dress']);
  assert.deepEqual(rowCaptions([-1, -1, -1, -1], DIGITS), ['', ''], "the result's labels for 'any' caption nothing");
});

test('grid cells: where each image lies in the grid PNG (2-pixel gaps), as fractions', () => {
  // 5 images of 28 px: 3 columns, 2 rows → 3·28 + 4·2 = 92 by 2·28 + 3·2 = 62.
  const cells = gridCells(5, 92, 62);
  assert.equal(cells.length, 5);
  assert.deepEqual(
    cells.map((c) => [c.row, c.col]),
    [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
    ],
  );
  const px = (c: (typeof cells)[number]) => [c.left * 92, c.top * 62, c.width * 92, c.height * 62].map(Math.round);
  assert.deepEqual(px(cells[0]), [2, 2, 28, 28]);
  assert.deepEqual(px(cells[2]), [62, 2, 28, 28]);
  assert.deepEqual(px(cells[4]), [32, 32, 28, 28]);
  // Drawn 4× larger (gaps of 8 pixels), the fractions are the same.
  assert.deepEqual(gridCells(5, 368, 248, 8), cells);
  assert.deepEqual(gridCells(4, 0, 0), [], 'nothing drawn yet');
});

test('a checkpoint’s classes for the model card and the checkpoint pick', () => {
  const model = { imageSize: 28, channels: 1, ch: 16, chMult: [1, 2], numResBlocks: 1, attnResolutions: [8] };
  const digits = { model: { ...model, dropout: 0, groups: 8, numClasses: 10 }, classes: DIGITS };
  assert.equal(classesText(digits), '10 (0, 1, …, 9)');
  assert.equal(classesText({ ...digits, classes: undefined }), '10 (0, 1, …, 9)', 'no names stored: the indices');
  assert.equal(
    classesText({ ...digits, classes: FASHION }),
    '10 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot)',
  );
  assert.equal(classesText({ ...digits, classes: FASHION }, 4), '10 (T-shirt/top, Trouser, Pullover, …, Ankle boot)');
  assert.equal(classesText({ model: { ...digits.model, numClasses: undefined } }), undefined, 'unconditional');
  assert.deepEqual(checkpointClasses(digits), { k: 10, classes: DIGITS });
  assert.deepEqual(checkpointClasses({ model: digits.model }).classes, DIGITS);
  assert.deepEqual(checkpointClasses(undefined), { k: 0, classes: [] });
  const header: InspectResult = {
    path: '/m.safetensors',
    fileSize: 1,
    format: 'ddpm-studio/1',
    preset: 'tiny',
    step: 5019,
    ...digits,
    params: 1,
    tensors: [],
    lossHistory: null,
    metadata: {},
  };
  assert.equal(checkpointSummary(header), 'tiny preset · 28×28×1 · classes 10 (0, 1, …, 9) · step 5,019');
  assert.equal(
    checkpointSummary({ ...header, model: { ...digits.model, numClasses: undefined }, classes: undefined }),
    'tiny preset · 28×28×1 · unconditional · step 5,019',
  );
  assert.equal(checkpointSummary({ ...header, format: null }), 'not a DDPM Studio checkpoint');
  const card = Object.fromEntries(modelCard(header).map((r) => [r.label, r.value]));
  assert.equal(card.classes, '10 (0, 1, …, 9)');
  const unconditional = modelCard({ ...header, model: { ...digits.model, numClasses: undefined }, classes: undefined });
  assert.ok(!unconditional.some((r) => r.label === 'classes'), 'no classes row for an unconditional checkpoint');
});

test('trajectory caption: the class choice and the guidance scale for conditional checkpoints', () => {
  const start = {
    type: 'start',
    runId: 'r',
    n: 16,
    total: 50,
    sampler: 'DDIM 50',
    checkpoint: '/c.safetensors',
  } as const;
  assert.equal(startCaption(start), '16 samples · DDIM 50 · /c.safetensors');
  assert.equal(
    startCaption({ ...start, labels: [3], classes: DIGITS, choice: 'class 3', guidance: 2 }),
    '16 samples · DDIM 50 · class 3 · guidance 2 · /c.safetensors',
  );
  assert.equal(
    startCaption({ ...start, choice: 'no class (unconditional)' }),
    '16 samples · DDIM 50 · no class (unconditional) · /c.safetensors',
  );
  assert.equal(
    startCaption({ ...start, choice: 'each class in turn', guidance: 0 }),
    '16 samples · DDIM 50 · each class in turn · guidance 0 · /c.safetensors',
    'guidance 0 is stated too',
  );
});

import { againLabel, MAX_SEED, newSeed, parseSeed } from '../../webview/trajectory/seed.ts';

test('trajectory seed: in the caption, edited as a 32-bit whole number, and the button says same or new', () => {
  const start = { type: 'start', runId: 'r', n: 4, total: 50, sampler: 'DDIM 50', checkpoint: '/c' } as const;
  assert.equal(startCaption({ ...start, seed: 0 }), '4 samples · DDIM 50 · seed 0 · /c', 'seed 0 is stated');
  assert.equal(
    startCaption({ ...start, seed: 42, choice: 'class 3', guidance: 2 }),
    '4 samples · DDIM 50 · class 3 · guidance 2 · seed 42 · /c',
  );
  assert.deepEqual(
    ['42', ' 7 ', '0', String(MAX_SEED), String(MAX_SEED + 1), '-1', '1.5', '1e3', '', 'abc'].map(parseSeed),
    [42, 7, 0, 4294967295, null, null, null, null, null, null],
  );
  assert.equal(againLabel(42, 42), 'Sample again (same seed 42)');
  assert.equal(againLabel(43, 42), 'Sample again (seed 43)');
  assert.equal(againLabel(null, 42), 'Sample again');
  assert.equal(againLabel(5, undefined), 'Sample again (seed 5)');
  assert.equal(
    newSeed(null, () => 0.5),
    50000,
  );
  assert.equal(
    newSeed(50000, () => 0.5),
    50001,
    'never the current seed',
  );
  assert.equal(
    newSeed(99999, () => 0.999999),
    0,
  );
});

import { fitRange } from '../../webview/shared/lossSeries.ts';

test('loss plot range: the data inside with a margin, no decade snapping (a loss near 1 is not on an edge)', () => {
  /** Where v sits in [lo, hi] on the axis: 0 = bottom edge, 1 = top edge. */
  const at = (r: [number, number], v: number, log: boolean) =>
    log ? Math.log(v / r[0]) / Math.log(r[1] / r[0]) : (v - r[0]) / (r[1] - r[0]);
  // A loss from 1.05 down to 0.95: uPlot's decade snapping gave [0.1, 10] or pinned 1.05 to the bottom of [1, 10].
  for (const log of [true, false]) {
    const r = fitRange(0.95, 1.05, log)!;
    for (const v of [0.95, 1.05]) {
      const y = at(r, v, log);
      assert.ok(y > 0.04 && y < 0.96, `${v} at ${y.toFixed(3)} of [${r}] (log ${log})`);
    }
    assert.ok(r[1] / r[0] < 2, `a narrow range: [${r}]`);
  }
  // A typical run: 1.0 → 0.03 over two decades; both ends inside, 8 % of the span as margin.
  const r = fitRange(0.03, 1.0, true)!;
  assert.ok(Math.abs(at(r, 0.03, true) - 0.08 / 1.16) < 1e-9 && Math.abs(at(r, 1.0, true) - 1.08 / 1.16) < 1e-9);
  // A flat curve is shown with a span of ×1.5 (log) or 5 % (linear), centred on it, not magnified into noise.
  const flat = fitRange(0.5, 0.5, true)!;
  assert.ok(Math.abs(flat[1] / flat[0] - 1.5 ** 1.16) < 1e-9);
  assert.ok(Math.abs(at(flat, 0.5, true) - 0.5) < 1e-9);
  const lin = fitRange(0.5, 0.5, false)!;
  assert.ok(Math.abs(lin[1] - lin[0] - 0.025 * 1.16) < 1e-12);
  // Linear: non-negative data keeps the axis at or above 0; negative data may go below.
  assert.equal(fitRange(0, 1, false)![0], 0);
  assert.ok(fitRange(-1, 1, false)![0] < -1);
  // No data yet (uPlot passes nulls), or a log axis with a value ≤ 0: uPlot chooses.
  assert.equal(fitRange(null, null, true), null);
  assert.equal(fitRange(0, 1, true), null);
  assert.equal(fitRange(NaN, 1, false), null);
});

import { logTicks, tickLabel } from '../../webview/shared/lossSeries.ts';

test('log axis ticks: round values inside the fitted range, as many as fit (3 to 8 on a tall plot), labelled with 3 digits', () => {
  // A loss near 1 (the range fitRange gives it): evenly spaced round values, 1 among them.
  assert.deepEqual(logTicks(0.787, 1.258), [0.8, 0.9, 1, 1.1, 1.2]);
  assert.deepEqual(logTicks(0.95, 1.05), [0.96, 0.98, 1, 1.02, 1.04]);
  // A run from 1 down to 0.03: 1-2-5 per decade (every mantissa would be 17 ticks).
  assert.deepEqual(logTicks(0.03, 1.08), [0.05, 0.1, 0.2, 0.5, 1]);
  // Eight decades: every other power of ten.
  assert.deepEqual(logTicks(1e-6, 100), [1e-6, 1e-4, 0.01, 1, 100]);
  for (const [a, b] of [
    [0.787, 1.258],
    [0.0093, 1.2],
    [0.5, 0.6],
    [0.02, 0.09],
    [2e-5, 3],
  ]) {
    const t = logTicks(a, b);
    assert.ok(t.length >= 3 && t.length <= 8, `${t.length} ticks over [${a}, ${b}]`);
    assert.ok(
      t.every((v) => v >= a && v <= b),
      `[${t}] inside [${a}, ${b}]`,
    );
  }
  // A short plot (room for 4 labels): a coarser step.
  assert.deepEqual(logTicks(0.775, 1.24, 4), [0.8, 1, 1.2]);
  assert.deepEqual(logTicks(0.827, 1.32, 4), [1, 1.2]);
  assert.deepEqual(logTicks(0, 1), []);
  assert.deepEqual([0, 0.1 + 0.2, 1, 1.2345, 20000, 1e-6].map(tickLabel), ['0', '0.3', '1', '1.23', '20000', '1.0e-6']);
});
