// The editing view of DDPM: Inpaint Image… and DDPM: Image to Image…: the image as the model sees it (converted here
// as the sidecar converts it: cover-cropped to a square of the model's size, grey-scale for one channel), the mask
// painted over it with the mouse (inpainting: brush, erase, clear, invert), the run's settings, x_t and x̂0 live as
// the sidecar streams them, and the result. Everything shown is kept with setState, so that a reloaded window
// restores the panel (extension/panels/editPanel.ts registers its serializer).
import '../webview.css';
import './edit.css';
import type { EditFromWebview, EditRunSettings, EditToWebview } from '../shared/messages.ts';
import { byId } from '../shared/dom.ts';
import { stepRate } from '../shared/timeline.ts';
import { drawPng, vscodeApi } from '../shared/vscodeApi.ts';
import { cellAt, coverCrop, PaintMask, toGrey } from './mask.ts';

/** The setup message, less what is used once (the image's bytes, the settings to offer): kept in the view's state. */
type Setup = Omit<Extract<EditToWebview, { type: 'setup' }>, 'type' | 'imageData' | 'imageMime' | 'settings'>;

export interface EditState {
  setup?: Setup;
  /** The converted image (PNG data URL of the model's size) and the mask's cells. */
  image?: string;
  mask?: number[];
  settings?: EditRunSettings;
  last?: { xt: string; x0: string; t: number };
  result?: string;
  caption?: string;
  status?: string;
  state?: 'idle' | 'running' | 'done' | 'error';
}

/** The mask overlay: the editor's selection colour, half transparent. */
const OVERLAY: [number, number, number, number] = [255, 64, 96, 150];

const api = vscodeApi<EditState>();
const post = (m: EditFromWebview) => api.postMessage(m);
const imageCanvas = byId('image', HTMLCanvasElement);
const overlay = byId('overlay', HTMLCanvasElement);
const xtCanvas = byId('xt', HTMLCanvasElement);
const x0Canvas = byId('x0', HTMLCanvasElement);
const resultCanvas = byId('result', HTMLCanvasElement);
const brush = byId('brush', HTMLInputElement);
const erase = byId('erase', HTMLInputElement);
const maskCount = byId('maskCount');
const status = byId('status');
const caption = byId('caption');
const bar = byId('bar', HTMLProgressElement);
const classSelect = byId('class', HTMLSelectElement);
const num = (id: string) => byId(id, HTMLInputElement);
const run = byId('run', HTMLButtonElement);
const stop = byId('stop', HTMLButtonElement);
const save = byId('save', HTMLButtonElement);

let state: EditState = api.getState() ?? {};
let mask: PaintMask | null = null;
let runId = '';
let times: number[] = [];

const persist = (patch: Partial<EditState>) => {
  state = { ...state, ...patch };
  api.setState(state);
};

/** The model's pixels drawn this many times larger: about 300 px whatever the model's size. */
const paintScale = (size: number) => Math.max(1, Math.round(300 / size));
/** Grids (n images with 2-px gaps) about 100 px per image. */
const gridScale = (size: number) => Math.max(1, Math.round(96 / size));

function setBodyState(s: NonNullable<EditState['state']>): void {
  document.body.dataset.state = s;
  run.disabled = s === 'running' || !state.setup;
  stop.disabled = s !== 'running';
  save.disabled = !state.result || s === 'running';
  byId('checkpoint', HTMLButtonElement).disabled = s === 'running';
  persist({ state: s });
  updateMaskInfo();
}

function drawOverlay(): void {
  if (!mask) return;
  const ctx = overlay.getContext('2d');
  if (!ctx) return;
  ctx.putImageData(new ImageData(mask.overlayRgba(OVERLAY), mask.size, mask.size), 0, 0);
}

function updateMaskInfo(): void {
  if (!mask || state.setup?.mode !== 'inpaint') return;
  const n = mask.count();
  maskCount.textContent = `${n} of ${mask.cells.length} pixels to regenerate`;
  maskCount.dataset.count = String(n);
  if (document.body.dataset.state !== 'running') run.disabled = n === 0 || !state.setup;
  run.title = n === 0 ? 'paint the part of the image to regenerate first' : '';
}

/** The cost of the RePaint settings in model evaluations (the schedule's reverse steps; ddpm/repaint.ts). */
function updateCost(): void {
  const [s, j, r] = ['steps', 'jumps', 'resample'].map((id) => Number(num(id).value));
  if (![s, j, r].every((v) => Number.isInteger(v) && v >= 1)) return;
  const points = j < s ? Math.ceil((s - j) / j) : 0;
  byId('cost').textContent = `${s + j * (r - 1) * points} denoising steps`;
}

function showSetup(s: Setup): void {
  document.body.dataset.mode = s.mode;
  byId('title').textContent = s.mode === 'inpaint' ? 'DDPM Inpainting' : 'DDPM Image to Image';
  run.textContent = s.mode === 'inpaint' ? 'Inpaint' : 'Generate';
  byId('imageCaption').textContent =
    s.mode === 'inpaint'
      ? `${s.imageName} as the model sees it (${s.imageSize}×${s.imageSize}): paint what to regenerate`
      : `${s.imageName} as the model sees it (${s.imageSize}×${s.imageSize})`;
  caption.textContent = `${s.checkpointName} · ${s.imageSize}×${s.imageSize}×${s.channels} · T = ${s.T}`;
  for (const c of [imageCanvas, overlay]) {
    c.width = c.height = s.imageSize;
    c.style.width = c.style.height = `${s.imageSize * paintScale(s.imageSize)}px`;
  }
  const conditional = s.classes.length > 0;
  byId('classLabel').hidden = !conditional;
  byId('guidanceLabel').hidden = !conditional;
  classSelect.replaceChildren(
    new Option('any (unconditional)', 'any'),
    ...s.classes.map((name, i) => new Option(name === String(i) ? name : `${i}: ${name}`, String(i))),
  );
}

function applySettings(o: EditRunSettings): void {
  num('n').value = String(o.n);
  num('seed').value = String(o.seed);
  if (o.steps !== undefined) num(state.setup?.mode === 'img2img' ? 'ddimSteps' : 'steps').value = String(o.steps);
  if (o.jumps !== undefined) num('jumps').value = String(o.jumps);
  if (o.resample !== undefined) num('resample').value = String(o.resample);
  if (o.strength !== undefined) num('strength').value = String(o.strength);
  if (o.guidance !== undefined) num('guidance').value = String(o.guidance);
  classSelect.value = o.class === undefined ? 'any' : String(o.class);
  byId('strengthValue').textContent = Number(num('strength').value).toFixed(2);
  byId('brushValue').textContent = `${brush.value} px`;
  updateCost();
}

function readSettings(): EditRunSettings {
  const s = state.setup!;
  const cls = classSelect.value === 'any' ? ('any' as const) : Number(classSelect.value);
  return {
    n: Number(num('n').value),
    seed: Number(num('seed').value),
    ...(s.classes.length ? { class: cls, guidance: Number(num('guidance').value) } : {}),
    ...(s.mode === 'inpaint'
      ? {
          mask: maskDataUrl(),
          steps: Number(num('steps').value),
          jumps: Number(num('jumps').value),
          resample: Number(num('resample').value),
        }
      : { strength: Number(num('strength').value), steps: Number(num('ddimSteps').value) }),
  };
}

function maskDataUrl(): string {
  const c = document.createElement('canvas');
  c.width = c.height = mask!.size;
  c.getContext('2d')!.putImageData(new ImageData(mask!.maskRgba(), mask!.size, mask!.size), 0, 0);
  return c.toDataURL('image/png');
}

/** Draws the image file into the model-sized canvas: cover crop, grey-scale for one channel. Returns its PNG. */
function convertImage(dataUrl: string, s: Setup): Promise<string> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const ctx = imageCanvas.getContext('2d');
      if (!ctx) return reject(new Error('no 2d context'));
      // Transparency over black, as the sidecar flattens it.
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, s.imageSize, s.imageSize);
      const { sx, sy, side } = coverCrop(img.naturalWidth, img.naturalHeight);
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(img, sx, sy, side, side, 0, 0, s.imageSize, s.imageSize);
      if (s.channels === 1) {
        const px = ctx.getImageData(0, 0, s.imageSize, s.imageSize);
        toGrey(px.data);
        ctx.putImageData(px, 0, 0);
      }
      resolve(imageCanvas.toDataURL('image/png'));
    };
    img.onerror = () => reject(new Error('the image cannot be shown'));
    img.src = dataUrl;
  });
}

function drawDataUrl(canvas: HTMLCanvasElement, url: string): Promise<void> {
  return drawPng(canvas, url.replace(/^data:image\/png;base64,/, ''), 1);
}

// ---- painting ----------------------------------------------------------------------------------------------------

let painting: { x: number; y: number; value: 0 | 1 } | null = null;
const cellOf = (e: PointerEvent) => cellAt(mask!.size, overlay.getBoundingClientRect(), e.clientX, e.clientY);

overlay.addEventListener('pointerdown', (e) => {
  if (!mask || document.body.dataset.state === 'running') return;
  e.preventDefault();
  overlay.setPointerCapture(e.pointerId);
  // The right button (or Erase) takes paint away.
  const value: 0 | 1 = erase.checked || e.button === 2 ? 0 : 1;
  const p = cellOf(e);
  mask.disc(p.x, p.y, Number(brush.value), value);
  painting = { ...p, value };
  drawOverlay();
  updateMaskInfo();
});
overlay.addEventListener('pointermove', (e) => {
  if (!painting || !mask) return;
  const p = cellOf(e);
  mask.stroke(painting.x, painting.y, p.x, p.y, Number(brush.value), painting.value);
  painting = { ...p, value: painting.value };
  drawOverlay();
  updateMaskInfo();
});
const endStroke = () => {
  if (!painting || !mask) return;
  painting = null;
  persist({ mask: Array.from(mask.cells) });
};
overlay.addEventListener('pointerup', endStroke);
overlay.addEventListener('pointercancel', endStroke);
overlay.addEventListener('contextmenu', (e) => e.preventDefault());

byId('clear').addEventListener('click', () => {
  mask?.clear();
  drawOverlay();
  updateMaskInfo();
  if (mask) persist({ mask: Array.from(mask.cells) });
});
byId('invert').addEventListener('click', () => {
  mask?.invert();
  drawOverlay();
  updateMaskInfo();
  if (mask) persist({ mask: Array.from(mask.cells) });
});
brush.addEventListener('input', () => (byId('brushValue').textContent = `${brush.value} px`));
num('strength').addEventListener('input', () => {
  byId('strengthValue').textContent = Number(num('strength').value).toFixed(2);
});
for (const id of ['steps', 'jumps', 'resample']) num(id).addEventListener('input', updateCost);

// ---- running -----------------------------------------------------------------------------------------------------

run.addEventListener('click', () => {
  if (!state.setup || (state.setup.mode === 'inpaint' && (!mask || mask.count() === 0))) return;
  const settings = readSettings();
  persist({ settings: { ...settings, mask: undefined } });
  post({ type: 'run', settings });
});
stop.addEventListener('click', () => post({ type: 'stop' }));
save.addEventListener('click', () => post({ type: 'save' }));
byId('checkpoint').addEventListener('click', () => post({ type: 'pickCheckpoint' }));

window.addEventListener('message', (ev: MessageEvent<EditToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'setup': {
      // What the view keeps (Setup): the message less the image's bytes and the settings to offer.
      const { type, imageData, imageMime, settings, ...s } = m;
      const sameImage = state.setup?.imagePath === s.imagePath && state.setup?.imageSize === s.imageSize;
      showSetup(s);
      // A new checkpoint of the same size keeps the mask painted so far.
      mask = new PaintMask(s.imageSize, sameImage ? state.mask : undefined);
      persist({ setup: s, mask: Array.from(mask.cells), ...(sameImage ? {} : { result: undefined, last: undefined }) });
      applySettings(sameImage && state.settings ? state.settings : settings);
      drawOverlay();
      void convertImage(`data:${imageMime};base64,${imageData}`, s).then(
        (png) => persist({ image: png }),
        (e: Error) => (status.textContent = e.message),
      );
      setBodyState(state.result ? 'done' : 'idle');
      break;
    }
    case 'start':
      runId = m.runId;
      times = [];
      bar.max = Math.max(1, m.total);
      bar.value = 0;
      caption.textContent = m.caption;
      status.textContent = 'starting…';
      persist({ caption: m.caption, result: undefined, last: undefined });
      setBodyState('running');
      break;
    case 'step':
      if (m.runId !== runId) return;
      times.push(m.at);
      bar.max = Math.max(1, m.total);
      bar.value = m.step + 1;
      status.textContent = `step ${m.step + 1}/${m.total} · t = ${m.t}${m.up ? ' (re-noising)' : ''} · ${stepRate(times).toFixed(1)} steps/s`;
      break;
    case 'frame':
      if (m.runId !== runId) return;
      void Promise.all([
        drawPng(xtCanvas, m.xt, gridScale(state.setup?.imageSize ?? 28)),
        drawPng(x0Canvas, m.x0, gridScale(state.setup?.imageSize ?? 28)),
      ]);
      persist({ last: { xt: m.xt, x0: m.x0, t: m.t } });
      break;
    case 'done':
      if (m.runId !== runId) return;
      bar.value = bar.max;
      status.textContent = `done in ${m.seconds.toFixed(1)} s${m.threads > 1 ? ` on ${m.threads} threads` : ''}`;
      persist({ result: m.grid, status: status.textContent });
      void drawPng(resultCanvas, m.grid, gridScale(state.setup?.imageSize ?? 28)).then(() => setBodyState('done'));
      break;
    case 'error':
      if (m.runId !== runId) return;
      status.textContent = m.message;
      persist({ status: m.message });
      setBodyState(m.message === 'stopped' ? 'idle' : 'error');
      break;
  }
});

// After a reload: the image, the mask, the settings, the last frame and the result as they were.
if (state.setup) {
  const s = state.setup;
  showSetup(s);
  mask = new PaintMask(s.imageSize, state.mask);
  drawOverlay();
  if (state.image) void drawDataUrl(imageCanvas, state.image);
  if (state.settings) applySettings(state.settings);
  const scale = gridScale(s.imageSize);
  if (state.last) void Promise.all([drawPng(xtCanvas, state.last.xt, scale), drawPng(x0Canvas, state.last.x0, scale)]);
  if (state.result) void drawPng(resultCanvas, state.result, scale);
  if (state.caption) caption.textContent = state.caption;
  if (state.status) status.textContent = state.status;
  setBodyState(state.result ? 'done' : state.state === 'error' ? 'error' : 'idle');
} else setBodyState('idle');
post({ type: 'ready' });
