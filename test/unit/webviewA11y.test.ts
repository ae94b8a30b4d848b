// Accessible names in the webviews' markup (webview/<view>/index.html): a screen reader announces every image (a
// canvas or a plot is role="img" with a label), every control has a label, and the status lines that change while a
// job runs are live regions. Buttons are named by their text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.ts';

const webviewDir = path.join(repoRoot, 'webview');
const views = fs
  .readdirSync(webviewDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(webviewDir, d.name, 'index.html')))
  .map((d) => d.name);

const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];

/** Problems with the accessible names of one view's markup. */
function a11yProblems(html: string): string[] {
  const problems: string[] = [];
  const ids = new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
  const labelled = (tag: string, at: number) => {
    const label = attr(tag, 'aria-label');
    if (label !== undefined) return label.trim() !== '';
    const by = attr(tag, 'aria-labelledby');
    if (by !== undefined) return by.split(/\s+/).every((id) => ids.has(id));
    const id = attr(tag, 'id');
    if (id && new RegExp(`<label[^>]*\\sfor="${id}"`).test(html)) return true;
    // Inside a <label> element.
    return html.lastIndexOf('<label', at) > html.lastIndexOf('</label>', at);
  };
  for (const m of html.matchAll(/<(canvas|input|select|textarea|progress)\b[^>]*>/g)) {
    const [tag, kind] = m;
    const name = attr(tag, 'id') ?? tag;
    if (attr(tag, 'aria-hidden') === 'true') continue;
    if (kind === 'canvas' && attr(tag, 'role') !== 'img') problems.push(`canvas ${name}: no role="img"`);
    if (!labelled(tag, m.index)) problems.push(`${kind} ${name}: no accessible name`);
  }
  // Plots drawn into a div (uPlot) are images too.
  for (const m of html.matchAll(/<div\b[^>]*\srole="img"[^>]*>/g))
    if (!labelled(m[0], m.index)) problems.push(`plot ${attr(m[0], 'id')}: no accessible name`);
  for (const id of ['status', 'evalStatus', 'stats'])
    for (const m of html.matchAll(new RegExp(`<[a-z]+\\b[^>]*\\sid="${id}"[^>]*>`, 'g')))
      if (!attr(m[0], 'aria-live') && attr(m[0], 'role') !== 'status') problems.push(`#${id}: not a live region`);
  for (const m of html.matchAll(/<div\b[^>]*\sid="error"[^>]*>/g))
    if (attr(m[0], 'role') !== 'alert') problems.push('#error: not role="alert"');
  return problems;
}

test('every webview: images have role="img" and a name, controls have labels, status lines are live', () => {
  assert.ok(views.length >= 4, views.join(', '));
  const problems = views.flatMap((v) =>
    a11yProblems(fs.readFileSync(path.join(webviewDir, v, 'index.html'), 'utf8')).map((p) => `${v}: ${p}`),
  );
  assert.deepEqual(problems, []);
});

test('the check finds each kind of missing name', () => {
  assert.deepEqual(
    a11yProblems(
      [
        '<canvas id="a"></canvas>',
        '<canvas id="b" role="img" aria-labelledby="nowhere"></canvas>',
        '<canvas id="c" role="img" aria-hidden="true"></canvas>',
        '<input id="d" type="search" />',
        '<label>Seed <input id="e" /></label>',
        '<label for="f">F</label><select id="f"></select>',
        '<progress id="g"></progress>',
        '<span id="status"></span>',
        '<div id="error"></div>',
        '<div id="plot" role="img"></div>',
      ].join('\n'),
    ),
    [
      'canvas a: no role="img"',
      'canvas a: no accessible name',
      'canvas b: no accessible name',
      'input d: no accessible name',
      'progress g: no accessible name',
      'plot plot: no accessible name',
      '#status: not a live region',
      '#error: not role="alert"',
    ],
  );
});
