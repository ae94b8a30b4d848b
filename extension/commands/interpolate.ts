/**
 * DDPM: Interpolate Images — two images (from the explorer's multi-selection, or chosen), a checkpoint, t and the
 * number of λ steps; optionally a grid over several t (paper Fig. 8: larger t trades fidelity for novelty).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { InterpolateProgressNotification, InterpolateRequest } from '../../sidecar/protocol.ts';
import type { InterpolateToWebview } from '../../webview/shared/messages.ts';
import { lambdaValues } from '../../webview/shared/lambdas.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { InterpolatePanel } from '../panels/interpolatePanel.ts';
import { describeCheckpoint, errorMessage, pickCheckpoint, rememberCheckpoint, showFailure } from './common.ts';
import { setting, workersSetting } from '../settings.ts';
import { pickImage } from '../pickers.ts';
import { selectedImages } from '../workspaceCandidates.ts';
import { startJob } from '../jobLog.ts';

const LAST_KEY = 'ddpm.lastInterpolateCheckpoint';

export interface InterpolateOptions {
  a: string;
  b: string;
  checkpoint?: string;
  t?: number | number[];
  steps?: number;
  /** Number of λ values from 0 to 1 (default 9). */
  lambdas?: number;
  saveTo?: string;
}

/**
 * The two images: the explorer's selection when it holds two, else quick picks of the workspace's images (Browse…
 * last) for what is missing. The explorer offers the command on two selected files when the one right-clicked is an
 * image (VS Code's context keys describe that one only), so a selection of an image and another file gives the image
 * as A and asks for B.
 */
async function askImages(inSelection: string[]): Promise<[string, string] | undefined> {
  if (inSelection.length === 2) return [inSelection[0], inSelection[1]];
  const title = 'DDPM: Interpolate';
  const a =
    inSelection.length === 1
      ? inSelection[0]
      : await pickImage(`${title} — first image (A)`, 'Which image is λ = 0? Type to filter the workspace images');
  if (!a) return undefined;
  const b = await pickImage(
    `${title} — second image (B)`,
    `Interpolate ${path.basename(a)} with which image (λ = 1)?`,
    a,
  );
  return b ? [a, b] : undefined;
}

export async function runInterpolateCommand(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  clicked?: vscode.Uri,
  selected?: vscode.Uri[],
  opts?: InterpolateOptions,
): Promise<{ strip: string | null } | undefined> {
  let files: string[];
  if (opts) files = [opts.a, opts.b];
  else {
    const chosen = await askImages(
      selectedImages(
        clicked?.fsPath,
        selected?.map((u) => u.fsPath),
      ),
    );
    if (!chosen) return undefined;
    files = chosen;
  }
  const last = context.globalState.get<string>(LAST_KEY);
  let checkpoint = opts?.checkpoint;
  if (!checkpoint) {
    checkpoint = opts
      ? (last ?? (await pickCheckpoint(context, true)))
      : await pickCheckpoint(context, false, 'DDPM: Interpolate — checkpoint', describeCheckpoint(sidecar));
  }
  if (!checkpoint) return undefined;
  let ts: number[];
  let count = opts?.lambdas ?? 9;
  if (opts) ts = Array.isArray(opts.t) ? opts.t : [opts.t ?? 500];
  else {
    const tText = await vscode.window.showInputBox({
      title: 'DDPM: Interpolate — diffuse to t',
      value: '500',
      prompt: 'larger t: more novel, less faithful (0 … T−1)',
      validateInput: (v) => (/^\d+$/.test(v) ? null : 'an integer'),
    });
    if (!tText) return undefined;
    const nText = await vscode.window.showInputBox({
      title: 'DDPM: Interpolate — number of λ steps',
      value: '9',
      validateInput: (v) => (/^\d+$/.test(v) && Number(v) >= 2 ? null : 'an integer ≥ 2'),
    });
    if (!nText) return undefined;
    count = Number(nText);
    const grid = await vscode.window.showQuickPick(
      [
        { label: `Only t = ${tText}` },
        { label: 'Grid over t = 250, 500, 750', description: 'how t trades fidelity for novelty' },
      ],
      { title: 'DDPM: Interpolate' },
    );
    if (!grid) return undefined;
    ts = grid.label.startsWith('Grid') ? [250, 500, 750] : [Number(tText)];
  }
  void context.globalState.update(LAST_KEY, checkpoint);
  rememberCheckpoint(context, checkpoint);
  const lambdas = lambdaValues(count);
  const panel = new InterpolatePanel(
    context.extensionUri,
    `DDPM Interpolation: ${path.basename(files[0])} ↔ ${path.basename(files[1])}`,
  );
  let saved: string | null = null;
  const post = (m: InterpolateToWebview) => panel.post(m);
  await post({ type: 'start', rows: ts, lambdas, a: path.basename(files[0]), b: path.basename(files[1]), checkpoint });
  const t0 = Date.now();
  const job = startJob(sidecar.log, 'interpolate', {
    a: files[0],
    b: files[1],
    checkpoint,
    t: ts,
    lambdas: count,
    steps: opts?.steps ?? setting<number>('ddimSteps'),
  });
  try {
    for (const [row, t] of ts.entries()) {
      const token = randomUUID();
      const sub = sidecar.onNotification(
        InterpolateProgressNotification,
        (p) => p.token === token && void post({ type: 'progress', row, done: (p.step + 1) / p.total }),
      );
      try {
        const r = await sidecar.request(InterpolateRequest, {
          checkpoint,
          imageA: files[0],
          imageB: files[1],
          t,
          lambdas,
          steps: opts?.steps ?? setting<number>('ddimSteps'),
          seed: 0,
          token,
          workers: workersSetting('sampleWorkers'),
        });
        if (row === 0) await post({ type: 'inputs', a: r.inputs[0], b: r.inputs[1] });
        await post({ type: 'row', row, t, strip: r.strip });
        if (opts?.saveTo && ts.length === 1) {
          fs.mkdirSync(path.dirname(opts.saveTo), { recursive: true });
          fs.writeFileSync(opts.saveTo, Buffer.from(r.strip, 'base64'));
          saved = opts.saveTo;
        }
      } finally {
        sub.dispose();
      }
    }
    await post({ type: 'done', seconds: (Date.now() - t0) / 1000 });
    job.done(`${ts.length} strip${ts.length === 1 ? '' : 's'} of ${count} λ`);
    if (opts?.saveTo && ts.length > 1) {
      // The webview composes the rows; ask it for the PNG.
      saved = await new Promise<string>((resolve) => {
        panel.savePng = (png) => {
          fs.writeFileSync(opts.saveTo!, Buffer.from(png, 'base64'));
          resolve(opts.saveTo!);
        };
      });
    }
    return { strip: saved };
  } catch (e) {
    job.failed(errorMessage(e));
    await post({ type: 'error', message: errorMessage(e) });
    showFailure(sidecar, 'interpolation failed', e);
    return undefined;
  }
}
