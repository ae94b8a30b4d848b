// The Training view: live loss curve (raw and smoothed, log-scale toggle; uPlot), lr, it/s, ETA, the latest
// preview grid and the checkpoints written.
import '../webview.css';
import 'uplot/dist/uPlot.min.css';
import './training.css';
import uPlot from 'uplot';
import type { TrainingFromWebview, TrainingToWebview } from '../shared/messages.ts';
import { LossHistory } from '../shared/lossSeries.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';

interface State {
  steps: number[];
  loss: number[];
  logScale: boolean;
}

const api = vscodeApi<State>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const history = new LossHistory();
const saved = api.getState();
let logScale = saved?.logScale ?? true;
if (saved) history.replace(saved.steps, saved.loss);

const css = getComputedStyle(document.body);
const color = (v: string, fallback: string) => css.getPropertyValue(v).trim() || fallback;
const lossEl = $('loss');
let plot: uPlot | null = null;

function makePlot(): void {
  plot?.destroy();
  const s = history.series();
  plot = new uPlot(
    {
      width: Math.max(300, lossEl.clientWidth || 600),
      height: 260,
      scales: { x: { time: false }, y: { distr: logScale ? 3 : 1 } },
      axes: [
        {
          stroke: color('--vscode-foreground', '#ccc'),
          grid: { stroke: color('--vscode-editorWidget-border', '#444') },
        },
        {
          stroke: color('--vscode-foreground', '#ccc'),
          grid: { stroke: color('--vscode-editorWidget-border', '#444') },
        },
      ],
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

function redraw(): void {
  const s = history.series();
  if (!plot) makePlot();
  else plot.setData([s.steps, s.raw, s.smooth]);
  api.setState({ steps: s.steps, loss: s.raw, logScale });
}

const logBox = $<HTMLInputElement>('logScale');
logBox.checked = logScale;
logBox.addEventListener('change', () => {
  logScale = logBox.checked;
  makePlot();
  api.setState({ ...history.series(), steps: history.series().steps, loss: history.series().raw, logScale });
  api.postMessage({ type: 'setLogScale', value: logScale } satisfies TrainingFromWebview);
});
$('stop').addEventListener('click', () => api.postMessage({ type: 'stop' } satisfies TrainingFromWebview));
$('installNative').addEventListener('click', () =>
  api.postMessage({ type: 'installNative' } satisfies TrainingFromWebview),
);
window.addEventListener('resize', () => plot?.setSize({ width: Math.max(300, lossEl.clientWidth), height: 260 }));

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
      history.add(m.step, m.loss);
      redraw();
      $('stats').textContent =
        `step ${m.step}/${m.steps} · loss ${m.loss.toFixed(4)} · lr ${m.lr.toExponential(2)} · ${m.itPerSec.toFixed(2)} it/s${m.threads > 1 ? ` on ${m.threads} threads` : ''} · ETA ${fmt(m.etaSeconds)}`;
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
api.postMessage({ type: 'ready' } satisfies TrainingFromWebview);
