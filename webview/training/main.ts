// The Training view: live loss curve (raw and smoothed, log-scale toggle; uPlot), the loss by quarter of t
// (smoothed), the held-out loss of the EMA weights when the run evaluates (evalEvery), lr, it/s, ETA, the latest
// preview grid and the checkpoints written.
import '../webview.css';
import 'uplot/dist/uPlot.min.css';
import './training.css';
import uPlot from 'uplot';
import type { TrainingFromWebview, TrainingToWebview } from '../shared/messages.ts';
import { EvalHistory, LossHistory, fitRange, logTicks, quarterLabels, tickLabel } from '../shared/lossSeries.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';

interface State {
  steps: number[];
  loss: number[];
  quarters?: (number | null)[][];
  T?: number;
  evals?: { step: number; loss: number }[];
  logScale: boolean;
  /** The run folder: what a restored panel re-attaches to (the extension's serializer reads it). */
  out?: string;
}

const api = vscodeApi<State>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const history = new LossHistory();
const evals = new EvalHistory();
const saved = api.getState();
let logScale = saved?.logScale ?? true;
let T = saved?.T ?? 1000;
let out = saved?.out;
if (saved) {
  history.replace(saved.steps, saved.loss, saved.quarters);
  evals.replace(saved.evals ?? []);
}

const css = getComputedStyle(document.body);
const color = (v: string, fallback: string) => css.getPropertyValue(v).trim() || fallback;
const lossEl = $('loss');
const quartersEl = $('quarters');
const evalEl = $('evalPlot');
let plot: uPlot | null = null;
let quarterPlot: uPlot | null = null;
let evalPlot: uPlot | null = null;
let quarterT = 0;

const axes = (): uPlot.Axis[] => [
  { stroke: color('--vscode-foreground', '#ccc'), grid: { stroke: color('--vscode-editorWidget-border', '#444') } },
  {
    stroke: color('--vscode-foreground', '#ccc'),
    grid: { stroke: color('--vscode-editorWidget-border', '#444') },
    // On a log axis, round ticks over the fitted range (uPlot's own are placed for whole decades).
    ...(logScale
      ? {
          // As many as the plot's height has room for (a label per 32 px); all of them labelled (uPlot's own log
          // filter would blank those that are not 1, 2 or 5 × 10^k).
          splits: (u: uPlot, _i: number, min: number, max: number) =>
            logTicks(min, max, Math.max(3, Math.min(8, Math.floor(u.bbox.height / devicePixelRatio / 32)))),
          filter: (_u: uPlot, ticks: number[]) => ticks,
          values: (_u: uPlot, ticks: (number | null)[]) => ticks.map((v) => (v === null ? '' : tickLabel(v))),
        }
      : {}),
  },
];
const QUARTER_COLORS: [string, string][] = [
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-green', '#89d185'],
  ['--vscode-charts-blue', '#3794ff'],
];
const widthOf = (el: HTMLElement, min: number) => Math.max(min, el.clientWidth || 600);

/**
 * The y scale of every plot: log or linear, its range fitted to the data (fitRange: no decade snapping, so a loss
 * near 1 is not pinned to an edge). The range drawn is kept on the plot's element (data-y-min, data-y-max) for tests.
 */
const yScale = (): uPlot.Scale => ({
  distr: logScale ? 3 : 1,
  range: (_u, min, max) => fitRange(min, max, logScale) ?? [min, max],
});
const recordRange = (el: HTMLElement): uPlot.Hooks.Arrays => ({
  setScale: [
    (u: uPlot, key: string) => {
      if (key !== 'y') return;
      el.dataset.yMin = String(u.scales.y.min);
      el.dataset.yMax = String(u.scales.y.max);
    },
  ],
});

function makePlot(): void {
  plot?.destroy();
  const s = history.series();
  plot = new uPlot(
    {
      width: widthOf(lossEl, 300),
      height: 260,
      scales: { x: { time: false }, y: yScale() },
      axes: axes(),
      series: [
        { label: 'step' },
        {
          label: 'loss',
          stroke: color('--vscode-charts-blue', '#3794ff'),
          width: 1,
          alpha: 0.35,
          points: { show: false },
        },
        { label: 'smoothed', stroke: color('--vscode-charts-orange', '#d18616'), width: 2, points: { show: false } },
      ],
      legend: { show: true },
      hooks: recordRange(lossEl),
    },
    [s.steps, s.raw, s.smooth],
    lossEl,
  );
}

function makeQuarterPlot(): void {
  quarterPlot?.destroy();
  quarterT = T;
  const s = history.series();
  const labels = quarterLabels(T);
  quarterPlot = new uPlot(
    {
      width: widthOf(quartersEl, 300),
      height: 200,
      scales: { x: { time: false }, y: yScale() },
      axes: axes(),
      series: [
        { label: 'step' },
        ...labels.map((label, q) => ({
          label,
          stroke: color(...QUARTER_COLORS[q]),
          width: 1.5,
          spanGaps: true,
          points: { show: false },
        })),
      ],
      legend: { show: true },
      hooks: recordRange(quartersEl),
    },
    [s.steps, ...s.quarterSmooth] as uPlot.AlignedData,
    quartersEl,
  );
}

function makeEvalPlot(): void {
  evalPlot?.destroy();
  const s = evals.series();
  evalPlot = new uPlot(
    {
      width: widthOf(evalEl, 300),
      height: 200,
      scales: { x: { time: false }, y: yScale() },
      axes: axes(),
      series: [
        { label: 'step' },
        {
          label: 'held-out loss',
          stroke: color('--vscode-charts-purple', '#b180d7'),
          width: 2,
          points: { show: true, size: 5 },
        },
      ],
      legend: { show: true },
      hooks: recordRange(evalEl),
    },
    [s.steps, s.loss],
    evalEl,
  );
}

function save(): void {
  const s = history.series();
  api.setState({ steps: s.steps, loss: s.raw, quarters: history.quarterRows(), T, evals: evals.all(), logScale, out });
}

function redraw(): void {
  const s = history.series();
  if (!plot) makePlot();
  else plot.setData([s.steps, s.raw, s.smooth]);
  if (!quarterPlot || quarterT !== T) makeQuarterPlot();
  else quarterPlot.setData([s.steps, ...s.quarterSmooth] as uPlot.AlignedData);
  // For tests and tools: how many points the loss curve has, and its first and last step.
  lossEl.dataset.points = String(s.steps.length);
  lossEl.dataset.first = String(s.steps[0] ?? '');
  lossEl.dataset.last = String(s.steps.at(-1) ?? '');
  quartersEl.dataset.points = String(s.quarterSmooth[0].length);
  quartersEl.dataset.filled = String(s.quarterSmooth.filter((q) => q.some((v) => v !== null)).length);
  save();
}

function redrawEval(): void {
  if (!evals.size) return;
  const appearing = $('evalFigure').hidden;
  $('evalFigure').hidden = false;
  // The quarter plot shares its row with this one from now on: it was sized for the whole row.
  if (appearing) quarterPlot?.setSize({ width: widthOf(quartersEl, 300), height: 200 });
  if (!evalPlot) makeEvalPlot();
  else {
    const s = evals.series();
    evalPlot.setData([s.steps, s.loss]);
  }
  evalEl.dataset.points = String(evals.size);
  save();
}

const logBox = $<HTMLInputElement>('logScale');
logBox.checked = logScale;
/** The theme's colours the plots use: when it changes, they are made again. */
const themeColors = () =>
  ['--vscode-foreground', '--vscode-editorWidget-border', '--vscode-charts-blue', '--vscode-charts-orange']
    .map((v) => color(v, ''))
    .join(' ');

/** Makes the plots that exist again (their scales or colours changed), with the data they have. */
function remakePlots(): void {
  if (plot) makePlot();
  if (quarterPlot) makeQuarterPlot();
  if (evalPlot) makeEvalPlot();
  document.body.dataset.plotColors = themeColors();
}
document.body.dataset.plotColors = themeColors();

// uPlot takes its colours when a plot is made, from the theme's CSS variables (VS Code sets them on <html> and the
// theme's kind as a class of <body>): a theme change remakes the plots, once per frame at most.
let themeFrame = 0;
const themeObserver = new MutationObserver(() => {
  cancelAnimationFrame(themeFrame);
  themeFrame = requestAnimationFrame(() => {
    if (themeColors() !== document.body.dataset.plotColors) remakePlots();
  });
});
themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
themeObserver.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-id'] });

logBox.addEventListener('change', () => {
  logScale = logBox.checked;
  makePlot();
  makeQuarterPlot();
  if (evals.size) makeEvalPlot();
  save();
  api.postMessage({ type: 'setLogScale', value: logScale } satisfies TrainingFromWebview);
});
$('stop').addEventListener('click', () => api.postMessage({ type: 'stop' } satisfies TrainingFromWebview));
$('resume').addEventListener('click', () => api.postMessage({ type: 'resume' } satisfies TrainingFromWebview));
$('openLatest').addEventListener('click', () => {
  const path = $('openLatest').dataset.path;
  if (path) api.postMessage({ type: 'openCheckpoint', path, action: 'inspect' } satisfies TrainingFromWebview);
});
$('installNative').addEventListener('click', () =>
  api.postMessage({ type: 'installNative' } satisfies TrainingFromWebview),
);
window.addEventListener('resize', () => {
  plot?.setSize({ width: widthOf(lossEl, 300), height: 260 });
  quarterPlot?.setSize({ width: widthOf(quartersEl, 300), height: 200 });
  evalPlot?.setSize({ width: widthOf(evalEl, 300), height: 200 });
});

const fmt = (s: number) =>
  Number.isFinite(s) ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : '?';

/** The last progress, for the stats line: live with rate and ETA; after the run, without them (they are stale). */
let last: Extract<TrainingToWebview, { type: 'progress' }> | null = null;
let resumedNote = '';
function statsLine(live: boolean): string {
  if (!last) return resumedNote || '';
  const p = last;
  const rate = live
    ? ` · ${p.itPerSec.toFixed(2)} it/s${p.threads > 1 ? ` on ${p.threads} threads` : ''} · ETA ${fmt(p.etaSeconds)}`
    : '';
  return `step ${p.step}/${p.steps} · loss ${p.loss.toFixed(4)} · lr ${p.lr.toExponential(2)}${rate}${resumedNote ? ` · ${resumedNote}` : ''}`;
}

/** One checkpoint of the list: its step and file, with Inspect and Sample buttons. */
function checkpointItem(step: number, path: string): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.path = path;
  const text = document.createElement('span');
  text.textContent = `step ${step}: ${path} `;
  text.title = path;
  li.append(text);
  for (const [label, action] of [
    ['Inspect', 'inspect'],
    ['Sample', 'sample'],
  ] as const) {
    const b = document.createElement('button');
    b.textContent = label;
    b.className = `ckpt-${action}`;
    b.addEventListener('click', () =>
      api.postMessage({ type: 'openCheckpoint', path, action } satisfies TrainingFromWebview),
    );
    li.append(b);
  }
  return li;
}

/** The Resume and Open buttons of a run that no job trains: shown once it has a checkpoint to continue from. */
function showEndedActions(checkpoint: string | null): void {
  const target = checkpoint ?? $('openLatest').dataset.path ?? null;
  if (target) $('openLatest').dataset.path = target;
  $('ended').hidden = !target;
}

window.addEventListener('message', (ev: MessageEvent<TrainingToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'start':
      $('title').textContent = `${m.preset} on ${m.data} → ${m.out}`;
      $('device').textContent = m.backend ? `backend: ${m.backend.name} — ${m.backend.device}` : '';
      $('hint').hidden = !m.suggestNative;
      out = m.out;
      last = null;
      resumedNote = m.resumedFrom ? `resumed from step ${m.resumedFrom}` : '';
      // A job just started says so; a view that attaches to one, or shows a run as it ended, gives its step.
      $('stats').textContent =
        m.jobId && !m.step
          ? resumedNote || 'starting…'
          : [`step ${m.step ?? 0}${m.steps ? `/${m.steps}` : ''}`, resumedNote].filter(Boolean).join(' · ');
      $('checkpoints').replaceChildren();
      ($('stop') as HTMLButtonElement).disabled = !m.jobId;
      $('ended').hidden = true;
      document.body.dataset.state = m.jobId ? 'running' : 'restored';
      save();
      break;
    case 'history':
      if (m.T) T = m.T;
      history.replace(m.steps, m.loss, m.quarters);
      redraw();
      if (m.evals) {
        evals.replace(m.evals);
        redrawEval();
      }
      break;
    case 'checkpoints':
      $('checkpoints').replaceChildren(...m.list.map((c) => checkpointItem(c.step, c.path)).reverse());
      break;
    case 'progress':
      T = m.T;
      history.add(m.step, m.loss, m.lossByQuarter);
      redraw();
      last = m;
      $('stats').textContent = statsLine(true);
      break;
    case 'eval':
      evals.add(m.step, m.loss);
      $('evalCaption').textContent =
        `held-out loss (EMA weights, ${m.images} ${m.split === 'test' ? 'held-out' : 'training'} images, ${m.byT.length} t) — step ${m.step}: ${m.loss.toFixed(4)}`;
      redrawEval();
      break;
    case 'preview':
      void drawPng($<HTMLCanvasElement>('preview'), m.png, 2);
      $('previewCaption').textContent = `samples at step ${m.step}`;
      break;
    case 'checkpoint': {
      $('checkpoints')
        .querySelector(`li[data-path="${CSS.escape(m.path)}"]`)
        ?.remove();
      $('checkpoints').prepend(checkpointItem(m.step, m.path));
      break;
    }
    case 'ended':
      document.body.dataset.state = m.reason;
      // Rate and ETA are stale once the run ends: the line keeps the step, loss and lr, and says how it ended.
      $('stats').textContent = [
        statsLine(false) || `step ${m.step}`,
        `${m.reason}${m.reason === 'failed' || m.reason === 'done' ? '' : ` at step ${m.step}`}${m.error ? `: ${m.error}` : ''}`,
      ].join(' · ');
      ($('stop') as HTMLButtonElement).disabled = true;
      showEndedActions(m.checkpoint);
      break;
  }
});
// A panel restored after a reload shows what it had, inert, until the extension says whether its run still trains.
if (saved) {
  document.body.dataset.state = 'restored';
  ($('stop') as HTMLButtonElement).disabled = true;
}
if (history.size) redraw();
if (evals.size) redrawEval();
api.postMessage({ type: 'ready' } satisfies TrainingFromWebview);
