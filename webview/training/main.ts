// The Training view: live loss curve (raw and smoothed, log-scale toggle; uPlot), the loss by quarter of t
// (smoothed), the held-out loss of the EMA weights when the run evaluates (evalEvery), lr, it/s, ETA, the latest
// preview grid and the checkpoints written.
import '../webview.css';
import 'uplot/dist/uPlot.min.css';
import './training.css';
import uPlot from 'uplot';
import type { TrainingFromWebview, TrainingToWebview } from '../shared/messages.ts';
import { EvalHistory, LossHistory, quarterLabels } from '../shared/lossSeries.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';

interface State {
  steps: number[];
  loss: number[];
  quarters?: (number | null)[][];
  T?: number;
  evals?: { step: number; loss: number }[];
  logScale: boolean;
}

const api = vscodeApi<State>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const history = new LossHistory();
const evals = new EvalHistory();
const saved = api.getState();
let logScale = saved?.logScale ?? true;
let T = saved?.T ?? 1000;
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
  { stroke: color('--vscode-foreground', '#ccc'), grid: { stroke: color('--vscode-editorWidget-border', '#444') } },
];
const QUARTER_COLORS: [string, string][] = [
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-green', '#89d185'],
  ['--vscode-charts-blue', '#3794ff'],
];
const widthOf = (el: HTMLElement, min: number) => Math.max(min, el.clientWidth || 600);

function makePlot(): void {
  plot?.destroy();
  const s = history.series();
  plot = new uPlot(
    {
      width: widthOf(lossEl, 300),
      height: 260,
      scales: { x: { time: false }, y: { distr: logScale ? 3 : 1 } },
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
      scales: { x: { time: false }, y: { distr: logScale ? 3 : 1 } },
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
      scales: { x: { time: false }, y: { distr: logScale ? 3 : 1 } },
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
    },
    [s.steps, s.loss],
    evalEl,
  );
}

function save(): void {
  const s = history.series();
  api.setState({ steps: s.steps, loss: s.raw, quarters: history.quarterRows(), T, evals: evals.all(), logScale });
}

function redraw(): void {
  const s = history.series();
  if (!plot) makePlot();
  else plot.setData([s.steps, s.raw, s.smooth]);
  if (!quarterPlot || quarterT !== T) makeQuarterPlot();
  else quarterPlot.setData([s.steps, ...s.quarterSmooth] as uPlot.AlignedData);
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
logBox.addEventListener('change', () => {
  logScale = logBox.checked;
  makePlot();
  makeQuarterPlot();
  if (evals.size) makeEvalPlot();
  save();
  api.postMessage({ type: 'setLogScale', value: logScale } satisfies TrainingFromWebview);
});
$('stop').addEventListener('click', () => api.postMessage({ type: 'stop' } satisfies TrainingFromWebview));
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

window.addEventListener('message', (ev: MessageEvent<TrainingToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'start':
      $('title').textContent = `${m.preset} on ${m.data} → ${m.out}`;
      $('device').textContent = `backend: ${m.backend.name} — ${m.backend.device}`;
      $('hint').hidden = !m.suggestNative;
      document.body.dataset.state = 'running';
      break;
    case 'history':
      history.replace(m.steps, m.loss);
      redraw();
      break;
    case 'progress':
      T = m.T;
      history.add(m.step, m.loss, m.lossByQuarter);
      redraw();
      $('stats').textContent =
        `step ${m.step}/${m.steps} · loss ${m.loss.toFixed(4)} · lr ${m.lr.toExponential(2)} · ${m.itPerSec.toFixed(2)} it/s${m.threads > 1 ? ` on ${m.threads} threads` : ''} · ETA ${fmt(m.etaSeconds)}`;
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
      const li = document.createElement('li');
      li.textContent = `step ${m.step}: ${m.path}`;
      $('checkpoints').prepend(li);
      break;
    }
    case 'ended':
      document.body.dataset.state = m.reason;
      $('stats').textContent += ` · ${m.reason}${m.error ? `: ${m.error}` : ''}`;
      ($('stop') as HTMLButtonElement).disabled = true;
      break;
  }
});
if (history.size) redraw();
if (evals.size) redrawEval();
api.postMessage({ type: 'ready' } satisfies TrainingFromWebview);
