// The interpolation view: the two inputs as the model sees them, then one strip per t (input a, x̂(λ) for each λ,
// input b), filled in as they finish; save everything as one PNG. What it shows is kept with setState, so that a
// reloaded window restores it (the panel serializer, extension/extension.ts).
import '../webview.css';
import './interpolate.css';
import type { InterpolateFromWebview, InterpolateToWebview } from '../shared/messages.ts';
import { byId } from '../shared/dom.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';
import { doneText, nextState, restoredState, type InterpolateState } from './state.ts';

const api = vscodeApi<InterpolateState>();
const post = (m: InterpolateFromWebview) => api.postMessage(m);
const caption = byId('caption');
const status = byId('status');
const bar = byId('bar', HTMLProgressElement);
const save = byId('save', HTMLButtonElement);
const strips = new Map<number, HTMLCanvasElement>();
let rowsT: number[] = [];
let state = api.getState();

save.addEventListener('click', () => {
  const canvases = rowsT.map((_, i) => strips.get(i)).filter((c): c is HTMLCanvasElement => !!c);
  if (!canvases.length) return;
  const out = document.createElement('canvas');
  out.width = Math.max(...canvases.map((c) => c.width));
  out.height = canvases.reduce((h, c) => h + c.height, 0);
  const ctx = out.getContext('2d');
  if (!ctx) return;
  let y = 0;
  for (const c of canvases) {
    ctx.drawImage(c, 0, y);
    y += c.height;
  }
  post({ type: 'save', png: out.toDataURL('image/png').replace(/^data:image\/png;base64,/, '') });
});

/** One empty figure per t, for the strips to be drawn into. */
function layoutRows(rows: number[]): void {
  rowsT = rows;
  const host = byId('rows');
  host.replaceChildren();
  strips.clear();
  rows.forEach((t, i) => {
    const fig = document.createElement('figure');
    const c = document.createElement('canvas');
    c.id = `strip-${i}`;
    c.width = c.height = 0;
    const cap = document.createElement('figcaption');
    cap.textContent = `t = ${t}`;
    fig.append(c, cap);
    host.append(fig);
  });
  bar.max = rows.length;
  bar.value = 0;
}

function drawInputs(a: string, b: string): void {
  void drawPng(byId('inputA', HTMLCanvasElement), a, 3);
  void drawPng(byId('inputB', HTMLCanvasElement), b, 3);
}

function drawStrip(row: number, png: string): void {
  const c = byId(`strip-${row}`, HTMLCanvasElement);
  void drawPng(c, png, 3).then(() => strips.set(row, c));
}

window.addEventListener('message', (ev: MessageEvent<InterpolateToWebview>) => {
  const m = ev.data;
  const next = nextState(state, m);
  if (next !== state && next) api.setState(next);
  state = next;
  switch (m.type) {
    case 'start':
      caption.textContent = next?.caption ?? '';
      layoutRows(m.rows);
      save.disabled = true;
      document.body.dataset.state = 'running';
      break;
    case 'inputs':
      drawInputs(m.a, m.b);
      break;
    case 'progress':
      bar.value = m.row + m.done;
      break;
    case 'row':
      drawStrip(m.row, m.strip);
      break;
    case 'done':
      status.textContent = doneText(m.seconds);
      save.disabled = false;
      document.body.dataset.state = 'done';
      break;
    case 'error':
      status.textContent = m.message;
      document.body.dataset.state = 'error';
      break;
  }
});

// After a reload: what the last run showed.
if (state) {
  state = restoredState(state);
  caption.textContent = state.caption;
  layoutRows(state.rows);
  if (state.inputs) drawInputs(state.inputs.a, state.inputs.b);
  state.strips.forEach((png, row) => png && drawStrip(row, png));
  bar.value = state.phase === 'done' ? state.rows.length : state.strips.filter(Boolean).length;
  status.textContent = state.status;
  save.disabled = state.phase !== 'done';
  document.body.dataset.state = state.phase;
}
post({ type: 'ready' });
