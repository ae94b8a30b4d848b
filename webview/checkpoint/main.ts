// The checkpoint inspector view: model card, loss history chart, tensor table (grouped, filterable, sortable) with
// per-tensor statistics and histogram, EMA-vs-raw summary, and a preview grid on request.
import '../webview.css';
import 'uplot/dist/uPlot.min.css';
import './checkpoint.css';
import uPlot from 'uplot';
import type { CheckpointFromWebview, CheckpointToWebview } from '../shared/messages.ts';
import { buildTable, formatCount, type SortKey, type TensorRow } from '../shared/tensorTable.ts';
import { smoothSeries } from '../shared/lossSeries.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';

const api = vscodeApi<unknown>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const post = (m: CheckpointFromWebview) => api.postMessage(m);
let rows: TensorRow[] = [];
let selected = '';

function renderTable(): void {
  const groups = buildTable(rows, $<HTMLInputElement>('filter').value, $<HTMLSelectElement>('sort').value as SortKey, $<HTMLInputElement>('desc').checked);
  const host = $('table');
  host.replaceChildren();
  let shown = 0;
  for (const g of groups) {
    const det = document.createElement('details');
    det.open = groups.length <= 12 || $<HTMLInputElement>('filter').value.length > 0;
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
        $('statsName').textContent = r.name;
        $('stats').textContent = 'computing…';
        post({ type: 'stats', name: r.name });
      });
      det.append(div);
      shown++;
    }
    host.append(det);
  }
  $('count').textContent = `(${shown} of ${rows.length})`;
}

for (const id of ['filter', 'sort', 'desc']) $(id).addEventListener('input', renderTable);
$('sample').addEventListener('click', () => post({ type: 'sample' }));
$('previewBtn').addEventListener('click', () => {
  $('previewCaption').textContent = 'sampling…';
  post({ type: 'preview' });
});

function histogram(edges: number[], counts: number[]): void {
  const c = $<HTMLCanvasElement>('hist');
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
      $('path').textContent = m.path;
      document.body.dataset.state = 'loading';
      break;
    case 'error':
      $('error').hidden = false;
      $('error').textContent = `This file cannot be opened as a checkpoint.\n\n${m.message}`;
      document.body.dataset.state = 'error';
      for (const id of ['sample', 'previewBtn']) ($(id) as HTMLButtonElement).disabled = true;
      // Nothing else can be shown for a file whose header cannot be read.
      document.querySelectorAll('section').forEach((el) => (el.hidden = true));
      break;
    case 'header': {
      rows = m.tensors;
      const card = $<HTMLTableElement>('card');
      card.replaceChildren();
      for (const { label, value } of m.card) {
        const tr = card.insertRow();
        tr.insertCell().textContent = label;
        tr.insertCell().textContent = value;
      }
      card.dataset.params = String(rows.filter((r) => !m.ours || r.name.startsWith('model.')).reduce((a, r) => a + r.shape.reduce((x, y) => x * y, 1), 0));
      if (!m.ours) {
        $('note').hidden = false;
        $('note').textContent = 'This safetensors file was not written by DDPM Studio: its tensors can be listed and inspected, but it cannot be sampled from.';
        for (const id of ['sample', 'previewBtn']) ($(id) as HTMLButtonElement).disabled = true;
      }
      if (m.lossHistory && m.lossHistory.steps.length > 1) {
        const h = m.lossHistory;
        new uPlot(
          { width: Math.max(320, $('loss').clientWidth || 600), height: 200, scales: { x: { time: false }, y: { distr: 3 } }, series: [{ label: 'step' }, { label: 'loss', stroke: '#3794ff', alpha: 0.4 }, { label: 'smoothed', stroke: '#d18616', width: 2 }] },
          [h.steps, h.loss, smoothSeries(h.loss)],
          $('loss'),
        );
      } else $('lossSection').hidden = true;
      document.body.dataset.state = 'ready';
      document.body.dataset.openMs = String(m.openMs);
      renderTable();
      break;
    }
    case 'stats':
      if (m.name !== selected) break;
      $('stats').textContent = `count ${formatCount(m.count)}\nmin   ${m.min.toPrecision(6)}\nmax   ${m.max.toPrecision(6)}\nmean  ${m.mean.toPrecision(6)}\nstd   ${m.std.toPrecision(6)}`;
      $('stats').dataset.mean = String(m.mean);
      histogram(m.edges, m.counts);
      break;
    case 'statsError':
      if (m.name === selected) $('stats').textContent = m.message;
      break;
    case 'emaDiff':
      $('emaSection').hidden = false;
      $('ema').textContent = `‖EMA − raw‖ / ‖raw‖ = ${(m.relative * 100).toFixed(3)} % overall; most different: ${m.top
        .slice(0, 5)
        .map((t) => `${t.name} (${(t.relative * 100).toFixed(2)} %)`)
        .join(', ')}`;
      break;
    case 'preview':
      void drawPng($<HTMLCanvasElement>('preview'), m.png, 2);
      $('previewCaption').textContent = `16 samples, DDIM-20, ${m.seconds.toFixed(1)} s`;
      break;
    case 'previewError':
      $('previewCaption').textContent = m.message;
      break;
  }
});
post({ type: 'ready' });
