/**
 * DDPM: Sample — pick a checkpoint and settings (or take them as arguments), watch the trajectory, save PNGs. For a
 * class-conditional checkpoint it asks for the class (each in turn, one, or none) and the guidance scale too.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { CancellationTokenSource } from 'vscode-jsonrpc';
import {
  InspectRequest,
  SampleParamsSchema,
  SampleProgressNotification,
  SampleRequest,
} from '../../sidecar/protocol.ts';
import { fieldError } from '../../sidecar/validation.ts';
import {
  checkpointClasses,
  choiceText,
  classWithIndex,
  sampleLabels,
  type ClassChoice,
} from '../../webview/shared/classes.ts';
import { setting, workersSetting } from '../settings.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import type { TrajectorySettings } from '../../webview/shared/messages.ts';
import { TrajectoryPanel } from '../panels/trajectoryPanel.ts';
import {
  describeCheckpoint,
  errorMessage,
  pickCheckpoint,
  rememberCheckpoint,
  saveDialog,
  showFailure,
} from './common.ts';
import { startJob } from '../jobLog.ts';

export interface SampleOptions {
  checkpoint?: string;
  n?: number;
  sampler?: 'ddim' | 'ddpm';
  steps?: number;
  seed?: number;
  /** Class-conditional checkpoints: a class index, 'each' (image i gets class i mod K; the default) or 'any' (none). */
  class?: ClassChoice;
  /** Classifier-free guidance scale (default: the ddpm.guidance setting). */
  guidance?: number;
  /** Write the final grid here (PNG), without asking. */
  saveTo?: string;
}

export interface SampleCommandResult {
  grid: string | null;
  images: number;
  seconds: number;
  /** Conditional checkpoints: the class of each image (−1: none) and the class names, as the sidecar returned them. */
  labels?: number[];
  classes?: string[];
}

type Settings = TrajectorySettings;

/** What sampling needs from a checkpoint's header: T, and its classes (k = 0: unconditional). */
interface Header {
  T?: number;
  k: number;
  classes: string[];
}

/** The checkpoint's header (only the header is read); T undefined and no classes if it cannot be read. */
async function checkpointHeader(sidecar: SidecarClient, checkpoint: string): Promise<Header> {
  const r = await sidecar.request(InspectRequest, { path: checkpoint }).catch(() => undefined);
  return { T: r?.schedule?.T, ...checkpointClasses(r) };
}

/**
 * For a class-conditional checkpoint: which class (each in turn, one of them by name, or none) and, unless none, the
 * guidance scale. `{}` for an unconditional checkpoint (nothing to ask); undefined when the user cancels.
 */
export async function askClassAndGuidance(
  header: Pick<Header, 'k' | 'classes'>,
  title = 'DDPM: Sample',
): Promise<{ class?: ClassChoice; guidance?: number } | undefined> {
  const { k, classes } = header;
  if (!(k > 0)) return {};
  type ClassItem = vscode.QuickPickItem & { choice: ClassChoice };
  const names = classes.map((_, i) => classWithIndex(classes, i));
  const inTurn = `${names.length > 3 ? `${names[0]}, ${names[1]}, …, ${names.at(-1)}` : names.join(', ')}, ${names[0]}, …`;
  const items: ClassItem[] = [
    {
      label: 'Each class in turn',
      description: `image i gets class i mod ${k}: ${inTurn}`,
      choice: 'each',
    },
    ...classes.map((_, i) => ({ label: classWithIndex(classes, i), choice: i })),
    { label: 'Any (unconditional)', description: 'no class: the model’s unconditional distribution', choice: 'any' },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: `${title} — class`,
    placeHolder: `This checkpoint is class-conditional (${k} classes): which class?`,
  });
  if (!picked) return undefined;
  if (picked.choice === 'any') return { class: 'any' };
  const guidance = await askGuidance(title);
  return guidance === undefined ? undefined : { class: picked.choice, guidance };
}

/** The classifier-free guidance scale w: ddpm.guidance first, a few common values, or another one typed in. */
async function askGuidance(title: string): Promise<number | undefined> {
  const dflt = setting<number>('guidance');
  const hint = (w: number) =>
    w === 0 ? 'no guidance: ε(x, c) alone' : w <= 1 ? 'more variety' : w >= 4 ? 'stronger class, less variety' : '';
  type Item = vscode.QuickPickItem & { w?: number };
  const items: Item[] = [...new Set([dflt, 0, 1, 2, 3, 5])].map((w) => ({
    label: String(w),
    description: [w === dflt ? 'default (ddpm.guidance)' : '', hint(w)].filter(Boolean).join(' · '),
    w,
  }));
  items.push({ label: 'Other…', description: `a number in 0..20` });
  const picked = await vscode.window.showQuickPick(items, {
    title: `${title} — guidance scale`,
    placeHolder: 'Classifier-free guidance w: ε = (1 + w)·ε(x, c) − w·ε(x, ∅)',
  });
  if (!picked) return undefined;
  if (picked.w !== undefined) return picked.w;
  const text = await vscode.window.showInputBox({
    title: `${title} — guidance scale`,
    value: String(dflt),
    validateInput: (v) =>
      fieldError(SampleParamsSchema, 'guidance', v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v),
  });
  return text === undefined ? undefined : Number(text);
}

/**
 * How many images: ddpm.numSamples first (the default), a few square numbers, or any number typed in (1…256, the
 * request's bounds); the grid is as square as the number allows.
 */
export async function askCount(title = 'DDPM: Sample'): Promise<number | undefined> {
  const dflt = setting<number>('numSamples');
  type Item = vscode.QuickPickItem & { n?: number };
  const fixed: Item[] = [...new Set([dflt, 4, 9, 16, 25, 36, 64])].map((n) => ({
    label: String(n),
    description: n === dflt ? 'default (ddpm.numSamples)' : undefined,
    n,
  }));
  const other: Item = { label: 'Other…', description: 'type a number', alwaysShow: false };
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = `${title} — number of images`;
  qp.placeholder = 'How many images? Pick one or type a number';
  qp.items = [...fixed, other];
  // A number typed that the list lacks becomes an item of its own (or says why it cannot be).
  qp.onDidChangeValue((v) => {
    const text = v.trim();
    const typed = /^\d+$/.test(text) ? Number(text) : undefined;
    if (typed === undefined || fixed.some((i) => i.n === typed)) {
      qp.items = [...fixed, other];
      return;
    }
    const error = fieldError(SampleParamsSchema, 'n', typed);
    qp.items = [
      error
        ? { label: text, description: `not possible: n ${error}`, alwaysShow: true }
        : { label: text, description: 'images', n: typed, alwaysShow: true },
      ...fixed,
    ];
  });
  const picked = await new Promise<Item | undefined>((resolve) => {
    qp.onDidAccept(() => {
      const item = qp.selectedItems[0] ?? qp.activeItems[0];
      if (item && item.n === undefined && item !== other) return; // a number out of bounds: stay open
      resolve(item);
      qp.hide();
    });
    qp.onDidHide(() => resolve(undefined));
    qp.show();
  });
  qp.dispose();
  if (!picked) return undefined;
  if (picked.n !== undefined) return picked.n;
  const text = await vscode.window.showInputBox({
    title: `${title} — number of images`,
    value: String(dflt),
    validateInput: (v) => fieldError(SampleParamsSchema, 'n', /^\d+$/.test(v.trim()) ? Number(v) : v),
  });
  return text === undefined ? undefined : Number(text);
}

async function askSettings(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
): Promise<{ settings: Settings; header: Header } | undefined> {
  const checkpoint = await pickCheckpoint(context, false, undefined, describeCheckpoint(sidecar));
  if (!checkpoint) return undefined;
  const header = await checkpointHeader(sidecar, checkpoint);
  const cls = await askClassAndGuidance(header);
  if (!cls) return undefined;
  const n = await askCount();
  if (n === undefined) return undefined;
  const ddimSteps = setting<number>('ddimSteps');
  const T = header.T;
  const samplers = [
    {
      label: `DDIM, ${ddimSteps} steps`,
      description: 'fast; stochastic (η = 1), the best samples per step by measurement',
      sampler: 'ddim' as const,
      steps: ddimSteps,
    },
    // DDPM takes every step of the checkpoint's schedule (the request's `steps` is DDIM's only).
    {
      label: T ? `DDPM, ${T} steps` : 'DDPM, every step',
      description: 'the paper’s ancestral sampler (slow)',
      sampler: 'ddpm' as const,
      steps: ddimSteps,
    },
    { label: 'DDIM, 10 steps', description: 'quick preview', sampler: 'ddim' as const, steps: 10 },
  ];
  if (setting<string>('sampler') === 'ddpm') samplers.unshift(samplers.splice(1, 1)[0]);
  const s = await vscode.window.showQuickPick(samplers, { title: 'DDPM: Sample — sampler' });
  if (!s) return undefined;
  const seedText = await vscode.window.showInputBox({
    title: 'DDPM: Sample — seed',
    value: String(Math.floor(Math.random() * 10000)),
    validateInput: (v) => fieldError(SampleParamsSchema, 'seed', /^\d+$/.test(v) ? Number(v) : v),
  });
  if (seedText === undefined) return undefined;
  return {
    settings: {
      checkpoint,
      n,
      sampler: s.sampler,
      steps: s.steps,
      seed: Number(seedText),
      class: cls.class ?? 'each',
      guidance: cls.guidance ?? setting<number>('guidance'),
    },
    header,
  };
}

export async function runSampleCommand(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  opts?: SampleOptions,
  restored?: { panel: vscode.WebviewPanel; settings: Settings; grid: string | null },
): Promise<SampleCommandResult | undefined> {
  const asked = opts || restored ? undefined : await askSettings(context, sidecar);
  const settings: Settings | undefined = restored
    ? restored.settings
    : opts
      ? {
          checkpoint: opts.checkpoint ?? (await pickCheckpoint(context, true)) ?? '',
          n: opts.n ?? setting<number>('numSamples'),
          sampler: opts.sampler ?? setting<'ddim' | 'ddpm'>('sampler'),
          steps: opts.steps ?? setting<number>('ddimSteps'),
          seed: opts.seed ?? 0,
          class: opts.class ?? 'each',
          guidance: opts.guidance ?? setting<number>('guidance'),
        }
      : asked?.settings;
  if (!settings || !settings.checkpoint) return undefined;
  rememberCheckpoint(context, settings.checkpoint);
  const header = asked?.header ?? (await checkpointHeader(sidecar, settings.checkpoint));
  const T = header.T;
  const panel = new TrajectoryPanel(
    context.extensionUri,
    `DDPM Trajectory: ${path.basename(settings.checkpoint)}`,
    restored?.panel,
  );
  let current = settings;
  let lastGrid: string | null = restored?.grid ?? null;
  const run = async (s: Settings): Promise<SampleCommandResult | undefined> => {
    const token = randomUUID();
    const frames = setting<number>('frames');
    const cts = new CancellationTokenSource();
    const subs = [
      sidecar.onNotification(SampleProgressNotification, (p) => {
        if (p.token !== token) return;
        if (p.frame)
          void panel.post({
            type: 'frame',
            runId: token,
            index: p.frame.index,
            t: p.t,
            xt: p.frame.xt,
            x0: p.frame.x0,
          });
        else void panel.post({ type: 'step', runId: token, step: p.step, total: p.total, t: p.t, at: Date.now() });
      }),
      panel.onMessage((m) => m.type === 'stop' && cts.cancel()),
    ];
    const conditional = header.k > 0;
    await panel.post({
      type: 'start',
      runId: token,
      n: s.n,
      total: s.sampler === 'ddim' ? s.steps : (T ?? 0),
      sampler: s.sampler === 'ddim' ? `DDIM ${s.steps}` : `DDPM ${T ?? ''}`.trim(),
      checkpoint: s.checkpoint,
      seed: s.seed,
      settings: s,
      // The labels are known from the choice (the sidecar computes the same), so the live grids are labelled too.
      ...(conditional
        ? {
            labels: sampleLabels(header.k, s.class, s.n),
            classes: header.classes,
            choice: choiceText(s.class, header.classes),
            ...(s.class !== 'any' ? { guidance: s.guidance } : {}),
          }
        : {}),
    });
    const job = startJob(sidecar.log, 'sample', {
      checkpoint: s.checkpoint,
      n: s.n,
      sampler: s.sampler === 'ddim' ? `ddim ${s.steps} steps` : 'ddpm',
      seed: s.seed,
      ...(conditional ? { class: s.class, guidance: s.class !== 'any' ? s.guidance : undefined } : {}),
    });
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `DDPM: sampling ${s.n} images`, cancellable: true },
        (_progress, cancel) => {
          cancel.onCancellationRequested(() => cts.cancel());
          return sidecar.request(
            SampleRequest,
            {
              checkpoint: s.checkpoint,
              n: s.n,
              sampler: s.sampler,
              steps: s.steps,
              seed: s.seed,
              class: s.class,
              guidance: s.guidance,
              frames,
              token,
              workers: workersSetting('sampleWorkers'),
            },
            cts.token,
          );
        },
      );
      lastGrid = r.grid;
      job.done(`${r.images.length} images${r.threads && r.threads > 1 ? ` on ${r.threads} threads` : ''}`);
      const classes = r.labels && r.classes ? { labels: r.labels, classes: r.classes } : {};
      await panel.post({
        type: 'done',
        runId: token,
        grid: r.grid,
        seconds: r.seconds,
        threads: r.threads,
        ...classes,
      });
      return { grid: null, images: r.images.length, seconds: r.seconds, ...classes };
    } catch (e) {
      const cancelled = cts.token.isCancellationRequested;
      if (cancelled) job.stopped();
      else job.failed(errorMessage(e));
      await panel.post({ type: 'error', runId: token, message: cancelled ? 'stopped' : errorMessage(e) });
      if (!cancelled) showFailure(sidecar, 'sampling failed', e, [{ title: 'Retry', run: () => run(s) }]);
      return undefined;
    } finally {
      subs.forEach((d) => d.dispose());
      cts.dispose();
    }
  };
  panel.onMessage(async (m) => {
    if (m.type === 'again') {
      // The same checkpoint, class and guidance; the seed the view shows (the same one unless the user changed it,
      // or asked for a new one), so that "Sample again" without a change gives the same images.
      const seed = m.seed ?? current.seed;
      if (fieldError(SampleParamsSchema, 'seed', seed)) return;
      current = { ...current, seed };
      await run(current);
    } else if (m.type === 'saveGrid' && lastGrid) {
      const target = await saveDialog('ddpm-samples.png');
      if (target) fs.writeFileSync(target.fsPath, Buffer.from(lastGrid, 'base64'));
    } else if (m.type === 'saveStrip') {
      const target = await saveDialog('ddpm-trajectory.png');
      if (target) fs.writeFileSync(target.fsPath, Buffer.from(m.png, 'base64'));
    }
  });
  // A panel restored after a reload shows its last run (the webview's state) and samples again on request.
  if (restored) return undefined;
  const result = await run(current);
  if (result && opts?.saveTo && lastGrid) {
    fs.mkdirSync(path.dirname(opts.saveTo), { recursive: true });
    fs.writeFileSync(opts.saveTo, Buffer.from(lastGrid, 'base64'));
    result.grid = opts.saveTo;
  }
  return result;
}

/**
 * A Trajectory panel VS Code restored after a reload: its webview state holds the run's settings and final grid, so
 * that Sample again (same settings, the seed the view shows) and Save grid work as before the reload.
 */
export async function restoreTrajectoryPanel(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  panel: vscode.WebviewPanel,
  state: unknown,
): Promise<void> {
  const st = (state ?? {}) as { settings?: Partial<Settings>; grid?: unknown };
  const parsed = SampleParamsSchema.safeParse(st.settings ?? {});
  const s = st.settings;
  if (!s || typeof s.checkpoint !== 'string' || !parsed.success) {
    // A panel from before its settings were kept: its pictures, without a run to repeat.
    new TrajectoryPanel(context.extensionUri, panel.title, panel);
    return;
  }
  const o = parsed.data;
  const settings: Settings = {
    checkpoint: o.checkpoint,
    n: o.n,
    sampler: o.sampler,
    steps: o.steps,
    seed: o.seed,
    class: o.class,
    guidance: o.guidance,
  };
  await runSampleCommand(context, sidecar, undefined, {
    panel,
    settings,
    grid: typeof st.grid === 'string' ? st.grid : null,
  });
}
