/** DDPM: Train / DDPM: Train on This Folder / DDPM: Stop — one training job at a time, shown in the Training view. */
import path from 'node:path';
import * as vscode from 'vscode';
import {
  CheckpointSavedNotification,
  JobEndedNotification,
  TrainEvalNotification,
  TrainPreviewNotification,
  TrainProgressNotification,
  TrainParamsSchema,
  TrainRequest,
  TrainStopRequest,
  PRESET_NAMES,
  type TrainParams,
  type TrainResult,
} from '../../sidecar/protocol.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { TrainingPanel } from '../panels/trainingPanel.ts';
import { errorMessage } from './common.ts';
import { setting, workersSetting } from '../settings.ts';
import { fieldError } from '../../sidecar/validation.ts';

export interface TrainOptions {
  data: string;
  preset: string;
  steps: number;
  batch?: number;
  out: string;
}

interface RunningJob {
  jobId: string;
  panel: TrainingPanel;
  subs: vscode.Disposable[];
}

export class Training implements vscode.Disposable {
  private job: RunningJob | null = null;
  private readonly status: vscode.StatusBarItem;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly sidecar: SidecarClient,
  ) {
    this.status = vscode.window.createStatusBarItem('ddpm.training', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'DDPM Training';
    this.status.command = 'ddpm.showTraining';
    sidecar.onDidDie(() => {
      if (this.job)
        this.finish({ reason: 'failed', step: 0, checkpoint: null, error: 'the sidecar stopped unexpectedly' });
    });
  }

  get running(): boolean {
    return this.job !== null;
  }

  reveal(): void {
    this.job?.panel.reveal();
  }

  private async ask(folder?: vscode.Uri): Promise<TrainOptions | undefined> {
    let data: string | undefined;
    if (folder) data = `folder:${folder.fsPath}`;
    else {
      const pick = await vscode.window.showQuickPick(
        [
          {
            label: 'Bundled MNIST digits',
            description: '10,000 handwritten digits, 28×28, no download',
            source: 'mnist',
          },
          { label: 'Folder of images…', description: 'PNG, JPEG, WebP (recursive)', source: 'folder' },
          { label: 'IDX file…', description: 'MNIST format, e.g. Fashion-MNIST (.gz or not)', source: 'idx' },
          { label: 'CIFAR-10 folder…', description: 'data_batch_*.bin', source: 'cifar10' },
        ],
        { title: 'DDPM: Train — data' },
      );
      if (!pick) return undefined;
      if (pick.source === 'mnist') data = 'mnist';
      else {
        const uri = await vscode.window.showOpenDialog({
          canSelectFiles: pick.source === 'idx',
          canSelectFolders: pick.source !== 'idx',
          canSelectMany: false,
          title: pick.label,
        });
        if (!uri?.[0]) return undefined;
        data = `${pick.source}:${uri[0].fsPath}`;
      }
    }
    const preferred = setting<string>('train.preset');
    const preset = await vscode.window.showQuickPick(
      [preferred, ...PRESET_NAMES.filter((p) => p !== preferred)].map((p) => ({
        label: p,
        description:
          p === 'mnist'
            ? '1.1M parameters, trains on a CPU'
            : p === 'tiny'
              ? 'a quick smoke run'
              : 'the paper’s 35.7M-parameter CIFAR-10 model (GPU)',
      })),
      { title: 'DDPM: Train — model preset' },
    );
    if (!preset) return undefined;
    const stepsText = await vscode.window.showInputBox({
      title: 'DDPM: Train — steps',
      value: String(setting<number>('train.steps')),
      validateInput: (v) => fieldError(TrainParamsSchema, 'steps', /^\d+$/.test(v) ? Number(v) : v),
    });
    if (!stepsText) return undefined;
    const ws = vscode.workspace.workspaceFolders?.[0]?.uri;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    let out: string | undefined = ws ? vscode.Uri.joinPath(ws, 'runs', `${preset.label}-${stamp}`).fsPath : undefined;
    out = await vscode.window.showInputBox({
      title: 'DDPM: Train — output folder',
      value: out ?? '',
      prompt: 'checkpoints, samples and the loss log go here',
      validateInput: (v) => (path.isAbsolute(v) ? null : 'an absolute path'),
    });
    if (!out) return undefined;
    return { data, preset: preset.label, steps: Number(stepsText), batch: setting<number>('train.batch'), out };
  }

  async start(opts?: TrainOptions, folder?: vscode.Uri): Promise<TrainResult | undefined> {
    if (this.job) {
      const a = await vscode.window.showWarningMessage('A DDPM training job is already running.', 'Show it', 'Stop it');
      if (a === 'Show it') this.reveal();
      if (a === 'Stop it') await this.stop();
      return undefined;
    }
    const o = opts ?? (await this.ask(folder));
    if (!o) return undefined;
    const params: TrainParams = {
      data: o.data,
      preset: o.preset as TrainParams['preset'],
      steps: o.steps,
      batch: o.batch ?? setting<number>('train.batch'),
      out: o.out,
      lr: setting<number>('train.lr'),
      warmup: setting<number>('train.warmup'),
      emaDecay: setting<number>('train.emaDecay'),
      saveEvery: setting<number>('train.saveEvery'),
      sampleEvery: setting<number>('train.sampleEvery'),
      evalEvery: setting<number>('train.evalEvery'),
      workers: workersSetting('train.workers'),
      resume: true,
    };
    const panel = new TrainingPanel(this.context.extensionUri, `DDPM Training: ${path.basename(o.out)}`);
    let jobId = '';
    let backend: TrainResult['backend'];
    const subs = [
      this.sidecar.onNotification(TrainProgressNotification, (p) => {
        if (p.jobId !== jobId) return;
        void panel.post({
          type: 'progress',
          step: p.step,
          steps: p.steps,
          loss: p.loss,
          lr: p.lr,
          itPerSec: p.itPerSec,
          etaSeconds: p.etaSeconds,
          threads: p.threads,
          lossByQuarter: p.lossByQuarter,
          T: p.T,
        });
        this.status.text = `$(pulse) DDPM ${p.step}/${p.steps} · loss ${p.loss.toFixed(4)}`;
        this.status.tooltip = `DDPM training: ${p.itPerSec.toFixed(2)} it/s, click to show`;
      }),
      this.sidecar.onNotification(
        TrainEvalNotification,
        (p) =>
          p.jobId === jobId &&
          void panel.post({
            type: 'eval',
            step: p.step,
            loss: p.loss,
            byT: p.byT,
            images: p.images,
            split: p.split,
          }),
      ),
      this.sidecar.onNotification(
        TrainPreviewNotification,
        (p) => p.jobId === jobId && void panel.post({ type: 'preview', step: p.step, png: p.png }),
      ),
      this.sidecar.onNotification(
        CheckpointSavedNotification,
        (p) => p.jobId === jobId && void panel.post({ type: 'checkpoint', step: p.step, path: p.path }),
      ),
      this.sidecar.onNotification(JobEndedNotification, (p) => {
        if (p.jobId !== jobId) return;
        this.finish(p);
        if (p.reason === 'failed')
          void vscode.window
            .showErrorMessage(`DDPM training failed: ${p.error}`, 'Open Log')
            .then((a) => a && this.sidecar.log.show());
        else void vscode.window.showInformationMessage(`DDPM training ${p.reason} at step ${p.step}: ${p.checkpoint}`);
      }),
      panel.onMessage((m) => {
        if (m.type === 'stop') void this.stop();
        // Installing while this job runs is safe: the new backend takes over when the sidecar next starts.
        if (m.type === 'installNative') void vscode.commands.executeCommand('ddpm.installCudaBackend');
      }),
    ];
    try {
      ({ jobId, backend } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'DDPM: starting training' },
        () => this.sidecar.request(TrainRequest, params),
      ));
    } catch (e) {
      subs.forEach((d) => d.dispose());
      await panel.post({ type: 'ended', reason: 'failed', step: 0, checkpoint: null, error: errorMessage(e) });
      void vscode.window
        .showErrorMessage(`DDPM: could not start training: ${errorMessage(e)}`, 'Open Log')
        .then((a) => a && this.sidecar.log.show());
      return undefined;
    }
    this.job = { jobId, panel, subs };
    // wasm and tfjs-cpu are what a machine without a GPU or the native backend gets. The native CPU backend trains
    // mnist 1.9× and cifar10 3.4–3.7× faster than wasm on 2 threads (bench/RESULTS.md), but not tiny (its ops are too
    // small for libtensorflow's per-op cost), so the panel offers it for the other presets.
    const suggestNative = (backend.name === 'wasm' || backend.name === 'cpu') && o.preset !== 'tiny';
    await panel.post({
      type: 'start',
      jobId,
      steps: o.steps,
      out: o.out,
      preset: o.preset,
      data: o.data,
      backend,
      suggestNative,
    });
    this.status.text = '$(pulse) DDPM training';
    this.status.show();
    void vscode.commands.executeCommand('setContext', 'ddpm.training', true);
    return { jobId, backend };
  }

  private finish(p: { reason: string; step: number; checkpoint: string | null; error?: string }): void {
    const j = this.job;
    if (!j) return;
    this.job = null;
    void j.panel.post({ type: 'ended', reason: p.reason, step: p.step, checkpoint: p.checkpoint, error: p.error });
    j.subs.forEach((d) => d.dispose());
    this.status.hide();
    void vscode.commands.executeCommand('setContext', 'ddpm.training', false);
  }

  async stop(): Promise<{ step: number; checkpoint: string } | undefined> {
    const j = this.job;
    if (!j) {
      void vscode.window.showInformationMessage('No DDPM training job is running.');
      return undefined;
    }
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'DDPM: stopping training (saving a checkpoint)…' },
        () => this.sidecar.request(TrainStopRequest, { jobId: j.jobId }),
      );
    } catch (e) {
      void vscode.window.showErrorMessage(`DDPM: stop failed: ${errorMessage(e)}`);
      return undefined;
    }
  }

  dispose(): void {
    this.status.dispose();
    this.job?.subs.forEach((d) => d.dispose());
  }
}
