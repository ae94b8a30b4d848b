// The interpolation view: the two inputs as the model sees them, then one strip per t (input a, x̂(λ) for each λ,
// input b), filled in as they finish; save everything as one PNG.
import '../webview.css';
import './interpolate.css';
import type { InterpolateFromWebview, InterpolateToWebview } from '../shared/messages.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';

const api = vscodeApi<unknown>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const post = (m: InterpolateFromWebview) => api.postMessage(m);
const strips = new Map<number, HTMLCanvasElement>();
let rowsT: number[] = [];

$('save').addEventListener('click', () => {
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

window.addEventListener('message', (ev: MessageEvent<InterpolateToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'start': {
      rowsT = m.rows;
      $('caption').textContent = `${m.a} ↔ ${m.b} · λ = ${m.lambdas.map((l) => +l.toFixed(3)).join(', ')} · ${m.checkpoint}`;
      const host = $('rows');
      host.replaceChildren();
      strips.clear();
      m.rows.forEach((t, i) => {
        const fig = document.createElement('figure');
        const c = document.createElement('canvas');
        c.id = `strip-${i}`;
        c.width = c.height = 0;
        const cap = document.createElement('figcaption');
        cap.textContent = `t = ${t}`;
        fig.append(c, cap);
        host.append(fig);
      });
      ($('bar') as HTMLProgressElement).max = m.rows.length;
      ($('bar') as HTMLProgressElement).value = 0;
      ($('save') as HTMLButtonElement).disabled = true;
      document.body.dataset.state = 'running';
      break;
    }
    case 'inputs':
      void drawPng($<HTMLCanvasElement>('inputA'), m.a, 3);
      void drawPng($<HTMLCanvasElement>('inputB'), m.b, 3);
      break;
    case 'progress':
      ($('bar') as HTMLProgressElement).value = m.row + m.done;
      break;
    case 'row': {
      const c = $<HTMLCanvasElement>(`strip-${m.row}`);
      void drawPng(c, m.strip, 3).then(() => strips.set(m.row, c));
      break;
    }
    case 'done':
      $('status').textContent = `done in ${m.seconds.toFixed(1)} s`;
      ($('save') as HTMLButtonElement).disabled = false;
      document.body.dataset.state = 'done';
      break;
    case 'error':
      $('status').textContent = m.message;
      document.body.dataset.state = 'error';
      break;
  }
});
post({ type: 'ready' });
