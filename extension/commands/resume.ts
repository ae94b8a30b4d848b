/**
 * DDPM: Resume Training — which run (a run folder of the workspace, a folder or a training checkpoint chosen on disk,
 * or the one the Training view or the inspector names) and up to which step; the run's own data, preset and batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { InspectRequest, TrainParamsSchema, TrainRunRequest } from '../../sidecar/protocol.ts';
import { fieldError } from '../../sidecar/validation.ts';
import { setting } from '../settings.ts';
import type { SidecarClient } from '../sidecarClient.ts';

/** A run folder, and (for an older checkpoint than its latest) the training checkpoint to continue from. */
export interface ResumeTarget {
  out: string;
  resumeFrom?: string;
}

/** What DDPM: Resume Training starts: a training request on the run's folder with resume on. */
export interface ResumeRequest {
  data: string;
  preset: string;
  steps: number;
  batch?: number;
  out: string;
  resumeFrom?: string;
}

/** A folder or a checkpoint file as a resume target. */
export function resumeTarget(file: string): ResumeTarget {
  const isDir = (() => {
    try {
      return fs.statSync(file).isDirectory();
    } catch {
      return false;
    }
  })();
  if (isDir) return { out: file };
  const out = path.dirname(file);
  return path.basename(file) === 'latest.safetensors' ? { out } : { out, resumeFrom: file };
}

/** The workspace's run folders (those with a latest.safetensors), newest first, and Browse… */
export async function pickRunToResume(): Promise<ResumeTarget | undefined> {
  type Item = vscode.QuickPickItem & { out?: string };
  const found = await vscode.workspace.findFiles('**/latest.safetensors', '**/node_modules/**', 200);
  const runs = found
    .map((u) => path.dirname(u.fsPath))
    .map((out) => ({ out, mtime: fs.statSync(path.join(out, 'latest.safetensors')).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  const items: Item[] = runs.map((r) => ({
    label: path.basename(r.out),
    description: new Date(r.mtime).toLocaleString(),
    detail: r.out,
    out: r.out,
  }));
  items.push({ label: 'Browse…', description: 'a run folder or a training checkpoint (.safetensors)' });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'DDPM: Resume Training — run',
    placeHolder: runs.length ? 'Which run?' : 'No run folder in the workspace: browse for one',
    matchOnDetail: true,
  });
  if (!pick) return undefined;
  if (pick.out) return { out: pick.out };
  const chosen = await vscode.window.showOpenDialog({
    canSelectFiles: true,
    canSelectFolders: true,
    canSelectMany: false,
    filters: { Checkpoints: ['safetensors'] },
    title: 'A run folder, or a training checkpoint to resume from',
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return chosen?.[0] ? resumeTarget(chosen[0].fsPath) : undefined;
}

/**
 * The request that resumes `t`: the run's data, preset and batch (from the sidecar's reading of the run folder or the
 * checkpoint's header) and the step to train up to (`steps`, or asked: by default the run's own target while it is not
 * reached, else ddpm.train.steps more). Throws with a message for a run that cannot be resumed.
 */
export async function resumeRequest(
  sidecar: SidecarClient,
  t: ResumeTarget,
  steps?: number,
): Promise<ResumeRequest | undefined> {
  const run = await sidecar.request(TrainRunRequest, { out: t.out });
  let step: number;
  let data: string | null;
  let preset: string | null;
  if (t.resumeFrom) {
    const h = await sidecar.request(InspectRequest, { path: t.resumeFrom });
    if (h.kind !== 'training')
      throw new Error(`${path.basename(t.resumeFrom)} holds weights only (no optimizer state): it cannot be resumed`);
    step = h.step ?? 0;
    data = h.data?.source ?? null;
    preset = h.preset ?? null;
  } else {
    if (!run?.latest) throw new Error(`${t.out} holds no training checkpoint (latest.safetensors) to resume from`);
    step = run.step;
    data = run.data;
    preset = run.preset;
  }
  if (!data || !preset) throw new Error(`the checkpoint does not say which data and preset its run trained on`);
  const target = run?.steps && run.steps > step ? run.steps : step + setting<number>('train.steps');
  let upTo = steps;
  if (upTo === undefined) {
    const text = await vscode.window.showInputBox({
      title: `DDPM: Resume Training — ${path.basename(t.out)} is at step ${step}: train up to step`,
      value: String(target),
      validateInput: (v) => {
        if (!/^\d+$/.test(v)) return fieldError(TrainParamsSchema, 'steps', v);
        return Number(v) > step
          ? fieldError(TrainParamsSchema, 'steps', Number(v))
          : `more than ${step}, the step it is at`;
      },
    });
    if (text === undefined) return undefined;
    upTo = Number(text);
  }
  return {
    data,
    preset,
    steps: upTo,
    ...(run?.batch ? { batch: run.batch } : {}),
    out: t.out,
    ...(t.resumeFrom ? { resumeFrom: t.resumeFrom } : {}),
  };
}
