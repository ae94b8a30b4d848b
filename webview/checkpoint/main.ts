// The checkpoint inspector view: model card, loss history chart, tensor table (grouped, filterable, sortable) with
// per-tensor statistics and histogram, EMA-vs-raw summary, a preview grid on request, and Evaluate… (bits/dim with
// its per-t curve and the sample-quality numbers; stored evaluations shown again on opening).
import '../webview.css';
import 'uplot/dist/uPlot.min.css';
import './checkpoint.css';
import uPlot from 'uplot';
import type { CheckpointFromWebview, CheckpointToWebview } from '../shared/messages.ts';
import { buildTable, formatCount, isSortKey, type TensorRow } from '../shared/tensorTable.ts';
import { smoothSeries } from '../shared/lossSeries.ts';
import {
  decadeTicks,
  entryLabel,
  evalSummaryRows,
  formatLogTick,
  perTSeries,
  type EvalEntry,
} from '../shared/evalResults.ts';
import { byId } from '../shared/dom.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';
import { isOurs, modelCard } from './modelCard.ts';

const api = vscodeApi<unknown>();
const post = (m: CheckpointFromWebview) => api.postMessage(m);
const filter = byId('filter', HTMLInputElement);
const sort = byId('sort', HTMLSelectElement);
const descending = byId('desc', HTMLInputElement);
const sampleButton = byId('sample', HTMLButtonElement);
const previewButton = byId('previewBtn', HTMLButtonElement);
const stats = byId('stats');
const evaluateButton = byId('evaluate', HTMLButtonElement);
const stopEvalButton = byId('stopEval', HTMLButtonElement);
const evalHistory = byId('evalHistory', HTMLSelectElement);
const evalProgress = byId('evalProgress', HTMLProgressElement);
const evalStatus = byId('evalStatus');
let evalEntries: EvalEntry[] = [];
let perTPlot: uPlot | null = null;
let rows: TensorRow[] = [];
let selected = '';

function renderTable(): void {
  const groups = buildTable(rows, filter.value, isSortKey(sort.value) ? sort.value : 'name', descending.checked);
  const host = byId('table');
  host.replaceChildren();
  let shown = 0;
  for (const g of groups) {
    const det = document.createElement('details');
    det.open = groups.length <= 12 || filter.value.length > 0;
    const sum = document.createElement('summary');
    sum.textContent = `${g.module || '(top level)'} — ${g.rows.length} tensor${g.rows.length > 1 ? 's' : ''}, ${formatCount(g.params)} values`;
    det.append(sum);
    for (const r of g.rows) {
      const div = document.createElement('div');
      div.className = `row-item${r.name === selected ? ' selected' : ''}`;
      div.dataset.name = r.name;
      for (const text of [r.leaf, r.dtype, `[${r.shape.join(', ')}]`, formatCount(r.params)]) {
        const span = document.createElement('span');
        span.textContent = text;
        div.append(span);
      }
      div.addEventListener('click', () => {
        selected = r.name;
        host.querySelectorAll('.row-item.selected').forEach((e) => e.classList.remove('selected'));
        div.classList.add('selected');
        byId('statsName').textContent = r.name;
        stats.textContent = 'computing…';
        post({ type: 'stats', name: r.name });
      });
      det.append(div);
      shown++;
    }
    host.append(det);
  }
  byId('count').textContent = `(${shown} of ${rows.length})`;
}

for (const control of [filter, sort, descending]) control.addEventListener('input', renderTable);
sampleButton.addEventListener('click', () => post({ type: 'sample' }));
byId('resume').addEventListener('click', () => post({ type: 'resume' }));
byId('importDiffusers').addEventListener('click', () => post({ type: 'importDiffusers' }));
previewButton.addEventListener('click', () => {
  byId('previewCaption').textContent = 'sampling…';
  post({ type: 'preview' });
});

evaluateButton.addEventListener('click', () => post({ type: 'evaluate' }));
stopEvalButton.addEventListener('click', () => {
  evalStatus.textContent = 'stopping…';
  post({ type: 'stopEval' });
});
evalHistory.addEventListener('change', () => showEntry(evalEntries[Number(evalHistory.value)]));

const cssColor = (v: string, fallback: string) =>
  getComputedStyle(document.body).getPropertyValue(v).trim() || fallback;

function classHistogram(classes: string[], fractions: number[]): void {
  const c = byId('classHist', HTMLCanvasElement);
  const ctx = c.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1e-9, ...fractions);
  const w = c.width / Math.max(1, fractions.length);
  const bottom = c.height - 14;
  ctx.font = '10px sans-serif';
  fractions.forEach((f, i) => {
    const h = (f / max) * (bottom - 12);
    ctx.fillStyle = cssColor('--vscode-charts-blue', '#3794ff');
    ctx.fillRect(i * w + 2, bottom - h, Math.max(1, w - 4), h);
    ctx.fillStyle = cssColor('--vscode-foreground', '#ccc');
    const name = classes[i] ?? String(i);
    const label = name.length > 6 ? name.slice(0, 5) + '…' : name;
    ctx.fillText(label, i * w + 2, c.height - 2);
    if (f > 0) ctx.fillText(`${Math.round(f * 100)}`, i * w + 2, bottom - h - 2);
  });
}

function showEntry(e: EvalEntry | undefined): void {
  const result = byId('evalResult');
  if (!e) {
    result.hidden = true;
    return;
  }
  const r = e.result;
  result.hidden = false;
  const table = byId('evalTable', HTMLTableElement);
  table.replaceChildren();
  for (const { label, value } of evalSummaryRows(r)) {
    const tr = table.insertRow();
    tr.insertCell().textContent = label;
    tr.insertCell().textContent = value;
  }
  table.dataset.bpd = r.bpd ? String(r.bpd.mean) : '';
  table.dataset.at = e.at;
  perTPlot?.destroy();
  perTPlot = null;
  byId('perTFigure').hidden = !r.bpd;
  if (r.bpd) {
    perTPlot = new uPlot(
      {
        width: Math.max(360, byId('perT').clientWidth || 600),
        height: 220,
        scales: { x: { time: false }, y: { distr: 3 } },
        axes: [
          {
            stroke: cssColor('--vscode-foreground', '#ccc'),
            grid: { stroke: cssColor('--vscode-editorWidget-border', '#444') },
          },
          {
            stroke: cssColor('--vscode-foreground', '#ccc'),
            grid: { stroke: cssColor('--vscode-editorWidget-border', '#444') },
            // One tick per decade: the terms span several, and uPlot's 1…9 × 10^k ticks would fill the plot.
            splits: (_u, _i, min, max) => decadeTicks(min, max),
            values: (_u, ticks) => ticks.map((v) => (v == null ? '' : formatLogTick(v))),
            size: 56,
          },
        ],
        series: [
          { label: 't' },
          {
            label: 'term (bits/dim)',
            stroke: cssColor('--vscode-charts-orange', '#d18616'),
            width: 2,
            points: { show: false },
          },
          { label: 'x̂0 MSE', stroke: cssColor('--vscode-charts-green', '#89d185'), width: 1, points: { show: false } },
          { label: 'ε MSE', stroke: cssColor('--vscode-charts-blue', '#3794ff'), width: 1, points: { show: false } },
        ],
        legend: { show: true },
      },
      perTSeries(r) as uPlot.AlignedData,
      byId('perT'),
    );
  }
  const q = r.quality;
  byId('qualityFigure').hidden = !q;
  if (q) {
    byId('qualityCaption').textContent = `class histogram of ${q.n} samples (% per class)`;
    classHistogram(q.classes, q.classHistogram);
  }
}

function showStored(entries: EvalEntry[], select = 0): void {
  evalEntries = entries;
  evalHistory.replaceChildren();
  entries.forEach((e, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = entryLabel(e);
    evalHistory.append(o);
  });
  evalHistory.hidden = entries.length < 2;
  evalHistory.value = String(select);
  byId('evalSection').dataset.entries = String(entries.length);
  showEntry(entries[select]);
}

function histogram(edges: number[], counts: number[]): void {
  const c = byId('hist', HTMLCanvasElement);
  const ctx = c.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...counts);
  const w = c.width / counts.length;
  ctx.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-charts-blue').trim() || '#3794ff';
  counts.forEach((n, i) => {
    const h = (n / max) * (c.height - 14);
    ctx.fillRect(i * w + 1, c.height - 14 - h, Math.max(1, w - 2), h);
  });
  ctx.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-foreground').trim() || '#ccc';
  ctx.font = '10px sans-serif';
  ctx.fillText(edges[0].toPrecision(3), 0, c.height - 2);
  const last = edges[edges.length - 1].toPrecision(3);
  ctx.fillText(last, c.width - ctx.measureText(last).width, c.height - 2);
}

window.addEventListener('message', (ev: MessageEvent<CheckpointToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'loading':
      byId('path').textContent = m.path;
      document.body.dataset.state = 'loading';
      break;
    case 'error':
      byId('error').hidden = false;
      byId('error').textContent = `This file cannot be opened as a checkpoint.\n\n${m.message}`;
      document.body.dataset.state = 'error';
      sampleButton.disabled = previewButton.disabled = true;
      // Nothing else can be shown for a file whose header cannot be read.
      document.querySelectorAll('section').forEach((el) => (el.hidden = true));
      break;
    case 'header': {
      const r = m.inspect;
      const ours = isOurs(r);
      rows = r.tensors;
      const card = byId('card', HTMLTableElement);
      card.replaceChildren();
      for (const { label, value } of modelCard(r)) {
        const tr = card.insertRow();
        tr.insertCell().textContent = label;
        tr.insertCell().textContent = value;
      }
      card.dataset.params = String(
        rows
          .filter((t) => !ours || t.name.startsWith('model.'))
          .reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0),
      );
      if (!ours) {
        byId('note').hidden = false;
        byId('note').textContent =
          'This safetensors file was not written by DDPM Studio: its tensors can be listed and inspected, but it cannot be sampled from.';
        sampleButton.disabled = previewButton.disabled = true;
        // A diffusers UNet2DModel (e.g. from the Hugging Face Hub): say so, and offer the import when it would work.
        const d = r.diffusers;
        if (d) {
          byId('diffusers').hidden = false;
          byId('diffusers').dataset.importable = String(d.importable);
          byId('diffusersText').textContent = d.importable
            ? `These are the weights of a diffusers UNet2DModel${d.model ? ` (${d.model.imageSize}×${d.model.imageSize}×${d.model.channels})` : ''}: import them as a DDPM Studio checkpoint to sample from them.`
            : `These look like the weights of a diffusers UNet2DModel, but they cannot be imported: ${d.problem ?? 'unknown reason'}`;
          byId('importDiffusers', HTMLButtonElement).disabled = !d.importable;
        }
      } else byId('evalSection').hidden = false;
      // A training checkpoint (weights, EMA and the optimizer's moments) can be trained on from where it stopped.
      byId('resume').hidden = r.kind !== 'training';
      if (r.lossHistory && r.lossHistory.steps.length > 1) {
        const h = r.lossHistory;
        new uPlot(
          {
            width: Math.max(320, byId('loss').clientWidth || 600),
            height: 200,
            scales: { x: { time: false }, y: { distr: 3 } },
            series: [
              { label: 'step' },
              { label: 'loss', stroke: '#3794ff', alpha: 0.4 },
              { label: 'smoothed', stroke: '#d18616', width: 2 },
            ],
          },
          [h.steps, h.loss, smoothSeries(h.loss)],
          byId('loss'),
        );
      } else byId('lossSection').hidden = true;
      document.body.dataset.state = 'ready';
      document.body.dataset.openMs = String(m.openMs);
      renderTable();
      break;
    }
    case 'stats': {
      const s = m.stats;
      if (s.name !== selected) break;
      stats.textContent = `count ${formatCount(s.count)}\nmin   ${s.min.toPrecision(6)}\nmax   ${s.max.toPrecision(6)}\nmean  ${s.mean.toPrecision(6)}\nstd   ${s.std.toPrecision(6)}`;
      stats.dataset.mean = String(s.mean);
      histogram(s.histogram.edges, s.histogram.counts);
      break;
    }
    case 'statsError':
      if (m.name === selected) stats.textContent = m.message;
      break;
    case 'emaDiff':
      byId('emaSection').hidden = false;
      byId('ema').textContent =
        `‖EMA − raw‖ / ‖raw‖ = ${(m.diff.relative * 100).toFixed(3)} % overall; most different: ${m.diff.top
          .slice(0, 5)
          .map((t) => `${t.name} (${(t.relative * 100).toFixed(2)} %)`)
          .join(', ')}`;
      break;
    case 'preview':
      void drawPng(byId('preview', HTMLCanvasElement), m.png, 2);
      byId('previewCaption').textContent = `16 samples, DDIM-20, ${m.seconds.toFixed(1)} s`;
      break;
    case 'previewError':
      byId('previewCaption').textContent = m.message;
      break;
    case 'evalStored':
      byId('evalSection').hidden = false;
      evaluateButton.disabled = false;
      stopEvalButton.hidden = true;
      evalProgress.hidden = true;
      if (document.body.dataset.eval === 'running') {
        evalStatus.textContent = 'done';
        document.body.dataset.eval = 'done';
      }
      showStored(m.entries);
      break;
    case 'evalStart':
      document.body.dataset.eval = 'running';
      evaluateButton.disabled = true;
      stopEvalButton.hidden = false;
      evalProgress.hidden = false;
      evalProgress.value = 0;
      evalStatus.textContent = `evaluating ${m.n} image${m.n > 1 ? 's' : ''} of ${m.data}${m.quality ? ', with sample quality' : ''}…`;
      break;
    case 'evalProgress':
      evalProgress.value = m.total ? m.done / m.total : 0;
      evalStatus.textContent =
        m.stage === 'bpd'
          ? `bits/dim: ${m.done.toLocaleString('en-US')} of ${m.total.toLocaleString('en-US')} forward passes`
          : `sample quality: sampler step ${m.done} of ${m.total}`;
      break;
    case 'evalError':
      document.body.dataset.eval = m.cancelled ? 'stopped' : 'failed';
      evaluateButton.disabled = false;
      stopEvalButton.hidden = true;
      evalProgress.hidden = true;
      evalStatus.textContent = m.cancelled ? 'stopped' : `failed: ${m.message}`;
      break;
  }
});
post({ type: 'ready' });
