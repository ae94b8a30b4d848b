/** DDPM: Sample — pick a checkpoint and settings (or take them as arguments), watch the trajectory, save PNGs. */
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
import { setting, workersSetting } from '../settings.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { TrajectoryPanel } from '../panels/trajectoryPanel.ts';
import { errorMessage, pickCheckpoint, rememberCheckpoint, saveDialog } from './common.ts';

export interface SampleOptions {
  checkpoint?: string;
  n?: number;
  sampler?: 'ddim' | 'ddpm';
  steps?: number;
  seed?: number;
  /** Write the final grid here (PNG), without asking. */
  saveTo?: string;
}

export interface SampleCommandResult {
  grid: string | null;
  images: number;
  seconds: number;
}

interface Settings {
  checkpoint: string;
  n: number;
  sampler: 'ddim' | 'ddpm';
  steps: number;
  seed: number;
}

/** The checkpoint's T (its header only is read); undefined if it is not a readable DDPM Studio checkpoint. */
async function diffusionSteps(sidecar: SidecarClient, checkpoint: string): Promise<number | undefined> {
  return (await sidecar.request(InspectRequest, { path: checkpoint }).catch(() => undefined))?.schedule?.T;
}

async function askSettings(context: vscode.ExtensionContext, sidecar: SidecarClient): Promise<Settings | undefined> {
  const checkpoint = await pickCheckpoint(context);
  if (!checkpoint) return undefined;
  const nPick = await vscode.window.showQuickPick(
    ['16', '4', '9', '25', '36', '64']
      .map((label) => ({ label, description: label === String(setting<number>('numSamples')) ? 'default' : undefined }))
      .sort((a, b) => (a.description ? -1 : b.description ? 1 : 0)),
    { title: 'DDPM: Sample — number of images', placeHolder: 'How many images?' },
  );
  if (!nPick) return undefined;
  const ddimSteps = setting<number>('ddimSteps');
  const T = await diffusionSteps(sidecar, checkpoint);
  const samplers = [
    {
      label: `DDIM, ${ddimSteps} steps`,
      description: 'deterministic, fast',
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
  return { checkpoint, n: Number(nPick.label), sampler: s.sampler, steps: s.steps, seed: Number(seedText) };
}

export async function runSampleCommand(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  opts?: SampleOptions,
): Promise<SampleCommandResult | undefined> {
  const settings: Settings | undefined = opts
    ? {
        checkpoint: opts.checkpoint ?? (await pickCheckpoint(context, true)) ?? '',
        n: opts.n ?? setting<number>('numSamples'),
        sampler: opts.sampler ?? setting<'ddim' | 'ddpm'>('sampler'),
        steps: opts.steps ?? setting<number>('ddimSteps'),
        seed: opts.seed ?? 0,
      }
    : await askSettings(context, sidecar);
  if (!settings || !settings.checkpoint) return undefined;
  rememberCheckpoint(context, settings.checkpoint);
  const T = await diffusionSteps(sidecar, settings.checkpoint);
  const panel = new TrajectoryPanel(context.extensionUri, `DDPM Trajectory: ${path.basename(settings.checkpoint)}`);
  let current = settings;
  let lastGrid: string | null = null;
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
    await panel.post({
      type: 'start',
      runId: token,
      n: s.n,
      total: s.sampler === 'ddim' ? s.steps : (T ?? 0),
      sampler: s.sampler === 'ddim' ? `DDIM ${s.steps}` : `DDPM ${T ?? ''}`.trim(),
      checkpoint: s.checkpoint,
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
              frames,
              token,
              workers: workersSetting('sampleWorkers'),
            },
            cts.token,
          );
        },
      );
      lastGrid = r.grid;
      await panel.post({ type: 'done', runId: token, grid: r.grid, seconds: r.seconds, threads: r.threads });
      return { grid: null, images: r.images.length, seconds: r.seconds };
    } catch (e) {
      const cancelled = cts.token.isCancellationRequested;
      await panel.post({ type: 'error', runId: token, message: cancelled ? 'stopped' : errorMessage(e) });
      if (!cancelled) {
        void vscode.window
          .showErrorMessage(`DDPM: sampling failed: ${errorMessage(e)}`, 'Open Log')
          .then((a) => a && sidecar.log.show());
      }
      return undefined;
    } finally {
      subs.forEach((d) => d.dispose());
      cts.dispose();
    }
  };
  panel.onMessage(async (m) => {
    if (m.type === 'again') {
      current = { ...current, seed: current.seed + 1 };
      await run(current);
    } else if (m.type === 'saveGrid' && lastGrid) {
      const target = await saveDialog('ddpm-samples.png');
      if (target) fs.writeFileSync(target.fsPath, Buffer.from(lastGrid, 'base64'));
    } else if (m.type === 'saveStrip') {
      const target = await saveDialog('ddpm-trajectory.png');
      if (target) fs.writeFileSync(target.fsPath, Buffer.from(m.png, 'base64'));
    }
  });
  const result = await run(current);
  if (result && opts?.saveTo && lastGrid) {
    fs.mkdirSync(path.dirname(opts.saveTo), { recursive: true });
    fs.writeFileSync(opts.saveTo, Buffer.from(lastGrid, 'base64'));
    result.grid = opts.saveTo;
  }
  return result;
}
