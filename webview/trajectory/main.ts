// The Trajectory view: samples denoising live (x_t), the x̂0 predictions beside them, a timeline to scrub back
// through the recorded steps, the current t and step rate, and the final grid. For a class-conditional checkpoint each
// image of the three grids carries its class (known from the start message, confirmed by the result).
import '../webview.css';
import './trajectory.css';
import type { TrajectoryFromWebview, TrajectorySettings, TrajectoryToWebview } from '../shared/messages.ts';
import { Timeline, stepProgressText, stepRate } from '../shared/timeline.ts';
import { className, gridCells, rowCaptions } from '../shared/classes.ts';
import { startCaption } from './caption.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';
import { againLabel, newSeed, parseSeed } from './seed.ts';

interface State {
  grid?: string;
  last?: { xt: string; x0: string; t: number };
  caption?: string;
  /** Conditional checkpoints: the class of each image and the class names. */
  labels?: number[];
  classes?: string[];
  /** The last run's seed. */
  seed?: number;
  /** The last run's settings: what a panel restored after a reload samples again with (the extension reads them). */
  settings?: TrajectorySettings;
}

/** Grids are drawn 4× (digits are 28×28). */
const SCALE = 4;

const api = vscodeApi<State>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const xt = $<HTMLCanvasElement>('xt');
const x0 = $<HTMLCanvasElement>('x0');
const grid = $<HTMLCanvasElement>('grid');
const slider = $<HTMLInputElement>('timeline');
const tLabel = $('t');
const rateLabel = $('rate');
const caption = $('caption');
const timeline = new Timeline();
let times: number[] = [];
let runId = '';
let total = 0;
let labels: number[] | undefined;
let classes: string[] = [];

/**
 * Labels each image of the grid drawn on `canvas` with its class (top-left corner), and gives its layer the captions
 * of the rows (data-rows, one per line) for the tests and a tooltip; clears them when there are no labels.
 */
function labelCells(canvas: HTMLCanvasElement): void {
  const layer = $(`${canvas.id}-cells`);
  layer.replaceChildren();
  delete layer.dataset.rows;
  layer.title = '';
  if (!labels || !canvas.width) return;
  const captions = rowCaptions(labels, classes);
  if (captions.every((c) => c === '')) return;
  layer.dataset.rows = captions.join('\n');
  layer.title = captions.map((c, r) => `row ${r + 1}: ${c}`).join('\n');
  for (const cell of gridCells(labels.length, canvas.width / SCALE, canvas.height / SCALE)) {
    const text = className(classes, labels[cell.index]);
    if (!text) continue;
    const span = document.createElement('span');
    span.className = 'cell-label';
    span.textContent = text;
    span.dataset.row = String(cell.row);
    span.dataset.index = String(cell.index);
    span.style.left = `${cell.left * 100}%`;
    span.style.top = `${cell.top * 100}%`;
    span.style.maxWidth = `${cell.width * 100}%`;
    layer.append(span);
  }
}

/** Draws a grid PNG and its class labels. */
async function drawGrid(canvas: HTMLCanvasElement, png: string): Promise<void> {
  await drawPng(canvas, png, SCALE);
  labelCells(canvas);
}

const post = (m: TrajectoryFromWebview) => api.postMessage(m);
const seedBox = $<HTMLInputElement>('seed');
const againButton = $<HTMLButtonElement>('again');
/** The seed of the last run (what "same seed" means). */
let lastSeed: number | undefined;

/** The button says whether the next run repeats the last one's images (same seed) or not; a non-seed disables it. */
function showSeed(): void {
  const typed = parseSeed(seedBox.value);
  seedBox.setAttribute('aria-invalid', String(seedBox.value.trim() !== '' && typed === null));
  againButton.textContent = againLabel(typed, lastSeed);
  againButton.dataset.seed = typed === null ? '' : String(typed);
  if (document.body.dataset.state !== 'running') againButton.disabled = seedBox.value.trim() !== '' && typed === null;
}
seedBox.addEventListener('input', showSeed);
seedBox.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !againButton.disabled) againButton.click();
});
$('stop').addEventListener('click', () => post({ type: 'stop' }));
againButton.addEventListener('click', () => {
  const seed = parseSeed(seedBox.value);
  post(seed === null ? { type: 'again' } : { type: 'again', seed });
});
$('newSeed').addEventListener('click', () => {
  seedBox.value = String(newSeed(parseSeed(seedBox.value)));
  showSeed();
  againButton.click();
});
$('saveGrid').addEventListener('click', () => post({ type: 'saveGrid' }));
$('saveStrip').addEventListener('click', () => void saveStrip());

/** The trajectory strip: every recorded x_t grid side by side, composed here on a canvas. */
async function saveStrip(): Promise<void> {
  const frames = timeline.all();
  if (!frames.length) return;
  const canvases = await Promise.all(
    frames.map(async (f) => {
      const c = document.createElement('canvas');
      await drawPng(c, f.xt, 1);
      return c;
    }),
  );
  const strip = document.createElement('canvas');
  strip.width = canvases.reduce((w, c) => w + c.width, 0);
  strip.height = Math.max(...canvases.map((c) => c.height));
  const ctx = strip.getContext('2d');
  if (!ctx) return;
  let x = 0;
  for (const c of canvases) {
    ctx.drawImage(c, x, 0);
    x += c.width;
  }
  post({ type: 'saveStrip', png: strip.toDataURL('image/png').replace(/^data:image\/png;base64,/, '') });
}

async function show(): Promise<void> {
  const f = timeline.current;
  if (!f) return;
  slider.max = String(Math.max(0, timeline.length - 1));
  slider.value = String(timeline.position);
  tLabel.textContent = `t = ${f.t}`;
  await Promise.all([drawGrid(xt, f.xt), drawGrid(x0, f.x0)]);
}

slider.addEventListener('input', () => {
  timeline.select(Number(slider.value));
  void show();
});

function setState(state: 'running' | 'done' | 'error' | 'idle'): void {
  document.body.dataset.state = state;
  ($('stop') as HTMLButtonElement).disabled = state !== 'running';
  ($('again') as HTMLButtonElement).disabled = state === 'running';
  ($('newSeed') as HTMLButtonElement).disabled = state === 'running';
  ($('saveGrid') as HTMLButtonElement).disabled = state !== 'done';
  ($('saveStrip') as HTMLButtonElement).disabled = timeline.length === 0 || state === 'running';
}

window.addEventListener('message', (ev: MessageEvent<TrajectoryToWebview>) => {
  const m = ev.data;
  if (m.type !== 'start' && m.runId !== runId) return;
  switch (m.type) {
    case 'start':
      runId = m.runId;
      total = m.total;
      timeline.clear();
      times = [];
      grid.width = grid.height = 0;
      labels = m.labels;
      classes = m.classes ?? [];
      for (const c of [xt, x0, grid]) labelCells(c);
      caption.textContent = startCaption(m);
      lastSeed = m.seed;
      if (m.seed !== undefined) seedBox.value = String(m.seed);
      setState('running');
      showSeed();
      api.setState({ caption: caption.textContent ?? '', labels, classes, seed: m.seed, settings: m.settings });
      break;
    case 'step':
      times.push(m.at);
      rateLabel.textContent = stepProgressText(m.step + 1, m.total || total, stepRate(times));
      if (!timeline.current) tLabel.textContent = `t = ${m.t}`;
      break;
    case 'frame':
      timeline.add({ index: m.index, t: m.t, xt: m.xt, x0: m.x0 });
      if (timeline.live) void show();
      api.setState({ ...api.getState(), last: { xt: m.xt, x0: m.x0, t: m.t } });
      break;
    case 'done':
      if (m.labels) {
        labels = m.labels;
        classes = m.classes ?? classes;
      }
      void drawGrid(grid, m.grid).then(() => {
        setState('done');
        showSeed();
      });
      rateLabel.textContent = `done in ${m.seconds.toFixed(1)} s${m.threads && m.threads > 1 ? ` on ${m.threads} threads` : ''}`;
      api.setState({ ...api.getState(), grid: m.grid, labels, classes });
      break;
    case 'error':
      setState('error');
      showSeed();
      rateLabel.textContent = m.message;
      break;
  }
});

// After a reload, show what the last run left (the panel serializer restores this state).
const saved = api.getState();
labels = saved?.labels;
classes = saved?.classes ?? [];
if (saved?.last) {
  timeline.add({ index: 0, t: saved.last.t, xt: saved.last.xt, x0: saved.last.x0 });
  void show();
}
if (saved?.grid) void drawGrid(grid, saved.grid).then(() => setState('done'));
else setState('idle');
if (saved?.caption) caption.textContent = saved.caption;
lastSeed = saved?.seed;
if (lastSeed !== undefined) seedBox.value = String(lastSeed);
showSeed();
post({ type: 'ready' });
