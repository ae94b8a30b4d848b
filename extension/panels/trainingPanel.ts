/**
 * The Training webview panel: one per run folder (a resumed run comes back to its tab); loss curve, stats, preview
 * grid, checkpoints. It shows a run as ddpm/trainRun describes it — live, or as it ended, with Resume and its
 * checkpoints to open — so that a panel restored after a reload comes back to its run.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import markup from '../../webview/training/index.html';
import type { TrainRunResult } from '../../sidecar/protocol.ts';
import type { TrainingFromWebview, TrainingToWebview } from '../../webview/shared/messages.ts';
import type { WebviewView } from './html.ts';
import { PanelHost } from './panelHost.ts';

export const TRAINING_VIEW = 'ddpm.training';
const VIEW: WebviewView = { name: 'training', viewType: TRAINING_VIEW, markup };

export const trainingTitle = (out: string) => `DDPM Training: ${path.basename(out)}`;

/** The live job a panel shows, if any. */
export interface LiveJob {
  jobId: string;
  backend: { name: string; device: string };
  suggestNative: boolean;
}

export class TrainingPanel extends PanelHost<TrainingToWebview, TrainingFromWebview> {
  constructor(
    extensionUri: vscode.Uri,
    readonly out: string,
    existing?: vscode.WebviewPanel,
  ) {
    super(extensionUri, VIEW, trainingTitle(out), existing);
  }

  /**
   * Shows the run: its header, the whole loss history (a resumed run's earlier steps too), held-out losses,
   * checkpoints and newest preview; then, without a live job, how it ended (with Resume and Open Checkpoint).
   * `fallback` fills in what the run folder does not say (a new run before its first save).
   */
  async showRun(
    run: TrainRunResult | null,
    live: LiveJob | null,
    fallback: { data?: string; preset?: string; steps?: number } = {},
  ): Promise<void> {
    const steps = live && run?.job ? run.job.steps : (run?.steps ?? fallback.steps ?? 0);
    await this.post({
      type: 'start',
      jobId: live?.jobId ?? null,
      steps,
      out: this.out,
      preset: run?.preset ?? fallback.preset ?? '?',
      data: run?.data ?? fallback.data ?? '?',
      backend: live?.backend ?? null,
      suggestNative: live?.suggestNative ?? false,
      resumedFrom: run?.resumedFrom ?? null,
      step: run?.step ?? 0,
    });
    if (!run) {
      if (!live)
        await this.post({
          type: 'ended',
          reason: 'failed',
          step: 0,
          checkpoint: null,
          error: `no training run in ${this.out}`,
        });
      return;
    }
    const h = run.history;
    await this.post({
      type: 'history',
      steps: h.steps,
      loss: h.loss,
      // The webview keeps the quarters by step; the sidecar sends them by quarter (as loss.csv's columns).
      quarters: h.steps.map((_, i) => h.quarters.map((q) => q[i] ?? null)),
      evals: run.evals,
      T: run.T,
    });
    await this.post({ type: 'checkpoints', list: run.checkpoints });
    if (run.preview) await this.post({ type: 'preview', step: run.preview.step, png: run.preview.png });
    if (!live) {
      const ended = run.ended;
      const reachedEnd = run.steps !== null && run.step >= run.steps;
      await this.post({
        type: 'ended',
        reason: ended?.reason ?? (reachedEnd ? 'done' : 'stopped'),
        step: ended?.step ?? run.step,
        checkpoint: ended?.checkpoint ?? run.latest,
        ...(ended?.error !== undefined ? { error: ended.error } : {}),
      });
    }
  }
}
