/**
 * DDPM: Inpaint Image… and DDPM: Image to Image… — an image (the explorer's, or chosen) and a checkpoint open the
 * editing view, where the user paints the mask (inpainting) or sets the strength (image to image) and runs; x_t and
 * x̂0 stream in as the sidecar's job takes its steps (ddpm/inpaint: RePaint, ddpm/img2img: SDEdit). With options (from
 * code and tests) a run starts at once and the command returns its result.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { CancellationTokenSource } from 'vscode-jsonrpc';
import {
  EditProgressNotification,
  Img2ImgParamsSchema,
  Img2ImgRequest,
  InpaintParamsSchema,
  InpaintRequest,
  InspectRequest,
  type EditResult,
} from '../../sidecar/protocol.ts';
import { checkpointClasses } from '../../webview/shared/classes.ts';
import type { EditMode, EditRunSettings } from '../../webview/shared/messages.ts';
import { checkWritePaths, type ArgPolicy } from '../commandArgs.ts';
import { EDIT_VIEW, EditPanel } from '../panels/editPanel.ts';
import { pickImage } from '../pickers.ts';
import { setting, workersSetting } from '../settings.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { describeCheckpoint, errorMessage, pickCheckpoint, rememberCheckpoint, saveDialog } from './common.ts';

const IMAGE = /\.(png|jpe?g|webp)$/i;
const MIME: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp' };
const LAST_KEY = 'ddpm.lastEditCheckpoint';
const NAMES: Record<EditMode, { command: string; title: string }> = {
  inpaint: { command: 'DDPM: Inpaint Image', title: 'DDPM Inpaint' },
  img2img: { command: 'DDPM: Image to Image', title: 'DDPM Image to Image' },
};

/** Options of the commands when called from code (tests, other extensions): run at once with these settings. */
export interface EditCommandOptions {
  image: string;
  checkpoint?: string;
  /** Inpainting: the mask file (white = regenerate) or a PNG data URL; RePaint's timesteps, j and r. */
  mask?: string;
  steps?: number;
  jumps?: number;
  resample?: number;
  /** Image to image: t₀/T. */
  strength?: number;
  n?: number;
  seed?: number;
  class?: number | 'any';
  guidance?: number;
  /** Write the result grid here (PNG). */
  saveTo?: string;
}

export interface EditCommandResult {
  /** `saveTo`, when given. */
  grid: string | null;
  images: number;
  imageSize: number;
  channels: number;
  modelSteps: number;
  seconds: number;
  labels?: number[];
}

/** What the view needs of a checkpoint: its image size, channels, T and classes (from its header). */
interface Header {
  imageSize: number;
  channels: number;
  T: number;
  classes: string[];
}

async function readHeader(sidecar: SidecarClient, checkpoint: string): Promise<Header> {
  const r = await sidecar.request(InspectRequest, { path: checkpoint });
  if (!r.model || !r.schedule) throw new Error(`${path.basename(checkpoint)} is not a DDPM Studio checkpoint`);
  return {
    imageSize: r.model.imageSize,
    channels: r.model.channels,
    T: r.schedule.T,
    classes: checkpointClasses(r).classes,
  };
}

/** The view's first settings: the requests' defaults (sidecar/protocol.ts), guidance from ddpm.guidance. */
function defaultSettings(mode: EditMode): EditRunSettings {
  const guidance = setting<number>('guidance');
  if (mode === 'inpaint') {
    const d = InpaintParamsSchema.parse({ checkpoint: '-', image: '-', mask: '-' });
    return { n: d.n, steps: d.steps, jumps: d.jumps, resample: d.resample, seed: d.seed, class: 'any', guidance };
  }
  const d = Img2ImgParamsSchema.parse({ checkpoint: '-', image: '-' });
  return { n: d.n, strength: d.strength, steps: setting<number>('ddimSteps'), seed: d.seed, class: 'any', guidance };
}

/** One editing view and the runs it asks for. */
class EditSession {
  private cts: CancellationTokenSource | null = null;
  private lastGrid: string | null = null;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly sidecar: SidecarClient,
    readonly panel: EditPanel,
    readonly mode: EditMode,
    readonly image: string,
    private checkpoint: string,
  ) {
    panel.onMessage(async (m) => {
      if (m.type === 'run') await this.run(m.settings);
      else if (m.type === 'stop') this.cts?.cancel();
      else if (m.type === 'save') await this.save();
      else if (m.type === 'pickCheckpoint') await this.changeCheckpoint();
    });
  }

  /** Sends the image and the checkpoint's shape to the view; false (and a message) when the checkpoint is unusable. */
  async setup(settings = defaultSettings(this.mode)): Promise<boolean> {
    let header: Header;
    try {
      header = await readHeader(this.sidecar, this.checkpoint);
    } catch (e) {
      void vscode.window.showErrorMessage(`${NAMES[this.mode].command}: ${errorMessage(e)}`);
      return false;
    }
    const ext = path.extname(this.image).slice(1).toLowerCase();
    await this.panel.post({
      type: 'setup',
      mode: this.mode,
      imagePath: this.image,
      imageName: path.basename(this.image),
      imageData: fs.readFileSync(this.image).toString('base64'),
      imageMime: MIME[ext] ?? 'image/png',
      checkpoint: this.checkpoint,
      checkpointName: path.basename(this.checkpoint),
      ...header,
      settings,
    });
    return true;
  }

  private async changeCheckpoint(): Promise<void> {
    const picked = await pickCheckpoint(
      this.context,
      false,
      `${NAMES[this.mode].command} — checkpoint`,
      describeCheckpoint(this.sidecar),
    );
    if (!picked) return;
    const previous = this.checkpoint;
    this.checkpoint = picked;
    if (await this.setup()) {
      rememberCheckpoint(this.context, picked);
      void this.context.globalState.update(LAST_KEY, picked);
    } else this.checkpoint = previous;
  }

  private async save(): Promise<void> {
    if (!this.lastGrid) return;
    const base = path.basename(this.image, path.extname(this.image));
    const target = await saveDialog(`${base}-${this.mode === 'inpaint' ? 'inpainted' : 'img2img'}.png`);
    if (target) fs.writeFileSync(target.fsPath, Buffer.from(this.lastGrid, 'base64'));
  }

  /** One run with the view's settings: progress and frames to the view, the result grid at the end. */
  async run(s: EditRunSettings): Promise<EditResult | undefined> {
    const runId = randomUUID();
    const cts = new CancellationTokenSource();
    this.cts = cts;
    const frames = this.mode === 'inpaint' ? Math.max(setting<number>('frames'), 30) : setting<number>('frames');
    const sub = this.sidecar.onNotification(EditProgressNotification, (p) => {
      if (p.token !== runId) return;
      if (p.frame)
        void this.panel.post({ type: 'frame', runId, index: p.frame.index, t: p.t, xt: p.frame.xt, x0: p.frame.x0 });
      else
        void this.panel.post({
          type: 'step',
          runId,
          step: p.step,
          total: p.total,
          t: p.t,
          up: p.up ?? false,
          at: Date.now(),
        });
    });
    const common = {
      checkpoint: this.checkpoint,
      image: this.image,
      n: s.n,
      seed: s.seed,
      ...(s.class !== undefined ? { class: s.class, guidance: s.guidance } : {}),
      frames,
      token: runId,
      workers: workersSetting('sampleWorkers'),
    };
    const what =
      this.mode === 'inpaint'
        ? `RePaint, ${s.steps} timesteps, jumps of ${s.jumps}, r = ${s.resample}`
        : `SDEdit, strength ${s.strength}, DDIM ${s.steps}`;
    await this.panel.post({
      type: 'start',
      runId,
      total: 0,
      caption: `${path.basename(this.checkpoint)} · ${s.n} image${s.n === 1 ? '' : 's'} · ${what} · seed ${s.seed}`,
    });
    try {
      const r = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: this.mode === 'inpaint' ? 'DDPM: inpainting' : 'DDPM: image to image',
          cancellable: true,
        },
        (_progress, cancel) => {
          cancel.onCancellationRequested(() => cts.cancel());
          return this.mode === 'inpaint'
            ? this.sidecar.request(
                InpaintRequest,
                { ...common, mask: s.mask ?? '', steps: s.steps, jumps: s.jumps, resample: s.resample },
                cts.token,
              )
            : this.sidecar.request(Img2ImgRequest, { ...common, strength: s.strength, steps: s.steps }, cts.token);
        },
      );
      this.lastGrid = r.grid;
      await this.panel.post({
        type: 'done',
        runId,
        grid: r.grid,
        input: r.input,
        ...(r.mask ? { mask: r.mask } : {}),
        seconds: r.seconds,
        threads: r.threads,
      });
      return r;
    } catch (e) {
      const cancelled = cts.token.isCancellationRequested;
      await this.panel.post({ type: 'error', runId, message: cancelled ? 'stopped' : errorMessage(e) });
      if (!cancelled)
        void vscode.window
          .showErrorMessage(`${NAMES[this.mode].command} failed: ${errorMessage(e)}`, 'Open Log')
          .then((a) => a && this.sidecar.log.show());
      return undefined;
    } finally {
      sub.dispose();
      cts.dispose();
      if (this.cts === cts) this.cts = null;
    }
  }
}

async function runEditCommand(
  mode: EditMode,
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  clicked?: vscode.Uri,
  opts?: EditCommandOptions,
): Promise<EditCommandResult | undefined> {
  let image = opts?.image ?? (clicked && IMAGE.test(clicked.fsPath) ? clicked.fsPath : undefined);
  if (!image) {
    // The workspace's images in a quick pick, Browse… last (works in code-server and remote windows too).
    image = await pickImage(`${NAMES[mode].command} — image`, 'Which image? Type to filter the workspace images');
    if (!image) return undefined;
  }
  const checkpoint =
    opts?.checkpoint ??
    (opts
      ? (context.globalState.get<string>(LAST_KEY) ?? (await pickCheckpoint(context, true)))
      : await pickCheckpoint(context, false, `${NAMES[mode].command} — checkpoint`, describeCheckpoint(sidecar)));
  if (!checkpoint) return undefined;
  rememberCheckpoint(context, checkpoint);
  void context.globalState.update(LAST_KEY, checkpoint);
  const panel = new EditPanel(context.extensionUri, `${NAMES[mode].title}: ${path.basename(image)}`);
  const session = new EditSession(context, sidecar, panel, mode, image, checkpoint);
  const d = defaultSettings(mode);
  const settings: EditRunSettings = {
    ...d,
    ...Object.fromEntries(
      Object.entries({
        n: opts?.n,
        seed: opts?.seed,
        steps: opts?.steps,
        jumps: opts?.jumps,
        resample: opts?.resample,
        strength: opts?.strength,
        class: opts?.class,
        guidance: opts?.guidance,
      }).filter(([, v]) => v !== undefined),
    ),
  };
  if (!(await session.setup(settings))) return undefined;
  if (!opts) return undefined;
  // From code: run at once (the mask as given), write the grid if asked.
  const r = await session.run({ ...settings, ...(mode === 'inpaint' ? { mask: opts.mask } : {}) });
  if (!r) return undefined;
  if (opts.saveTo) {
    fs.mkdirSync(path.dirname(opts.saveTo), { recursive: true });
    fs.writeFileSync(opts.saveTo, Buffer.from(r.grid, 'base64'));
  }
  return {
    grid: opts.saveTo ?? null,
    images: r.images.length,
    imageSize: r.imageSize,
    channels: r.channels,
    modelSteps: r.modelSteps,
    seconds: r.seconds,
    ...(r.labels ? { labels: r.labels } : {}),
  };
}

/** The view's state that a restored panel needs to run again (webview/edit/main.ts keeps it). */
interface RestoredState {
  setup?: { mode?: EditMode; imagePath?: string; checkpoint?: string };
}

/**
 * The two commands and the editing view's serializer, for activate() to subscribe. Options from code may write their
 * `saveTo` only where `policy` allows (commandArgs.ts).
 */
export function registerEditing(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  policy: ArgPolicy,
): vscode.Disposable[] {
  const command = (mode: EditMode) => (arg?: vscode.Uri | EditCommandOptions) =>
    arg instanceof vscode.Uri || arg === undefined
      ? runEditCommand(mode, context, sidecar, arg)
      : runEditCommand(mode, context, sidecar, undefined, checkWritePaths(`ddpm.${mode}`, arg, ['saveTo'], policy));
  return [
    vscode.commands.registerCommand('ddpm.inpaint', command('inpaint')),
    vscode.commands.registerCommand('ddpm.img2img', command('img2img')),
    // After a reload the view redraws itself from its state; the session is re-attached so that it can run again.
    vscode.window.registerWebviewPanelSerializer(EDIT_VIEW, {
      deserializeWebviewPanel: async (webviewPanel, state: unknown) => {
        const panel = new EditPanel(context.extensionUri, webviewPanel.title, webviewPanel);
        const s = (state as RestoredState | undefined)?.setup;
        if (s?.mode && s.imagePath && s.checkpoint && fs.existsSync(s.imagePath))
          new EditSession(context, sidecar, panel, s.mode, s.imagePath, s.checkpoint);
      },
    }),
  ];
}
