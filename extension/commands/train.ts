/**
 * DDPM: Train / Train on This Folder / Resume Training / Stop — one training job at a time, shown in the Training view
 * of its run folder (one tab per run). The job runs in the sidecar's job process, which outlives the window: after a
 * reload the extension re-attaches to it (reattach, and the panels VS Code restores: restore).
 */
import path from 'node:path';
import * as vscode from 'vscode';
import {
  CheckpointSavedNotification,
  InfoRequest,
  JobEndedNotification,
  TrainEvalNotification,
  TrainPreviewNotification,
  TrainProgressNotification,
  TrainParamsSchema,
  TrainRequest,
  TrainStopRequest,
  TrainRunRequest,
  ErrorCodes,
  PRESET_NAMES,
  type TrainParams,
  type TrainResult,
  type TrainRunResult,
} from '../../sidecar/protocol.ts';
import { SidecarGoneError, type SidecarClient } from '../sidecarClient.ts';
import { TrainingPanel } from '../panels/trainingPanel.ts';
import { errorMessage } from './common.ts';
import { pickRunToResume, resumeRequest, resumeTarget, type ResumeTarget } from './resume.ts';
import { checkpointBudget, type CheckpointBudget } from '../checkpointBudget.ts';
import { formatBytes } from '../workspaceCandidates.ts';
import { startJob, type JobRecord } from '../jobLog.ts';
import { pickData, type DataKind } from '../pickers.ts';
import { setting, workersSetting } from '../settings.ts';
import { fieldError } from '../../sidecar/validation.ts';

export interface TrainOptions {
  data: string;
  preset: string;
  steps: number;
  batch?: number;
  out: string;
  /** Checkpoints kept besides latest (default: ddpm.train.keep). */
  keep?: number;
  /** Continue from this training checkpoint instead of the run's latest (DDPM: Resume Training on an older one). */
  resumeFrom?: string;
}

interface RunningJob {
  jobId: string;
  /** Its run folder: the Training view of the run shows it. */
  out: string;
  /** The latest step and checkpoint heard of (what a lost sidecar leaves). */
  step: number;
  checkpoint: string | null;
  subs: vscode.Disposable[];
  /** Its lines in the DDPM log. */
  record?: JobRecord;
}

export class Training implements vscode.Disposable {
  private job: RunningJob | null = null;
  private readonly status: vscode.StatusBarItem;
  /** The Training views by run folder: one per run. */
  private readonly panels = new Map<string, TrainingPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly sidecar: SidecarClient,
  ) {
    this.status = vscode.window.createStatusBarItem('ddpm.training', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'DDPM Training';
    this.status.command = 'ddpm.showTraining';
    this.disposables.push(
      // The one notification of a lost sidecar says what happened to the run, and offers to resume it.
      sidecar.onDeathReport(() => {
        const j = this.job;
        if (!j) return undefined;
        const out = j.out;
        return {
          detail: `Training of ${path.basename(out)} ended at step ${j.step}${j.checkpoint ? ` (last checkpoint: ${path.basename(j.checkpoint)})` : ''}.`,
          actions: j.checkpoint ? [{ title: 'Resume Training', run: () => this.resume(out) }] : [],
        };
      }),
      sidecar.onDidDie(() => {
        const j = this.job;
        if (j)
          this.finish({
            reason: 'failed',
            step: j.step,
            checkpoint: j.checkpoint,
            error: 'the sidecar stopped unexpectedly',
          });
      }),
    );
  }

  get running(): boolean {
    return this.job !== null;
  }

  /** Shows the running job's view (re-opening it, or attaching to a job of the job process, if needed). */
  async reveal(): Promise<void> {
    if (this.job) {
      const out = this.job.out;
      const open = this.panels.get(out);
      if (open) return open.reveal();
      const panel = this.panelFor(out);
      const run = await this.sidecar.request(TrainRunRequest, { out }).catch(() => null);
      await panel.showRun(run, run?.job ? { ...run.job, suggestNative: false } : null);
      return;
    }
    if (!(await this.reattach(true)))
      void vscode.window.showInformationMessage('No DDPM training job is running.', 'Resume Training…').then((a) => {
        if (a) void this.resume();
      });
  }

  /** The view of a run folder: the open one, or a new one (its buttons wired). */
  private panelFor(out: string, existing?: vscode.WebviewPanel): TrainingPanel {
    const key = path.resolve(out);
    const open = this.panels.get(key);
    if (open && !existing) {
      open.reveal();
      return open;
    }
    open?.panel.dispose();
    const panel = new TrainingPanel(this.context.extensionUri, out, existing);
    this.panels.set(key, panel);
    panel.panel.onDidDispose(() => {
      if (this.panels.get(key) === panel) this.panels.delete(key);
    });
    panel.onMessage((m) => {
      if (m.type === 'stop') void this.stop();
      else if (m.type === 'resume') void this.resume(out);
      else if (m.type === 'openCheckpoint') openCheckpoint(m.path, m.action);
      // Installing while this job runs is safe: the new backend takes over when the sidecar next starts.
      else if (m.type === 'installNative') void vscode.commands.executeCommand('ddpm.installCudaBackend');
    });
    return panel;
  }

  /**
   * Notifications of the job `ref.jobId` (read when each arrives: the id is known only once the request returns),
   * to the view of `out` and the status bar.
   */
  private follow(ref: { jobId: string }, out: string): vscode.Disposable[] {
    const view = () => this.panels.get(path.resolve(out));
    const mine = (id: string) => id === ref.jobId && this.job?.jobId === id;
    return [
      this.sidecar.onNotification(TrainProgressNotification, (p) => {
        if (p.jobId !== ref.jobId) return;
        if (mine(p.jobId) && this.job) {
          this.job.step = p.step;
          this.job.checkpoint = p.lastCheckpoint ?? this.job.checkpoint;
        }
        void view()?.post({
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
        this.status.tooltip = `DDPM training of ${path.basename(out)}: ${p.itPerSec.toFixed(2)} it/s, click to show`;
      }),
      this.sidecar.onNotification(
        TrainEvalNotification,
        (p) =>
          p.jobId === ref.jobId &&
          void view()?.post({
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
        (p) => p.jobId === ref.jobId && void view()?.post({ type: 'preview', step: p.step, png: p.png }),
      ),
      this.sidecar.onNotification(CheckpointSavedNotification, (p) => {
        if (p.jobId !== ref.jobId) return;
        if (this.job?.jobId === p.jobId) this.job.checkpoint = p.path;
        void view()?.post({ type: 'checkpoint', step: p.step, path: p.path });
      }),
      this.sidecar.onNotification(JobEndedNotification, (p) => {
        if (p.jobId !== ref.jobId) return;
        this.finish(p);
        if (p.reason === 'failed')
          void vscode.window
            .showErrorMessage(
              `DDPM training of ${path.basename(out)} failed at step ${p.step}: ${p.error}`,
              ...(p.checkpoint ? ['Resume Training'] : []),
              'Open Log',
            )
            .then((a) => {
              if (a === 'Open Log') this.sidecar.log.show();
              else if (a) void this.resume(out);
            });
        else
          void vscode.window
            .showInformationMessage(
              `DDPM training of ${path.basename(out)} ${p.reason === 'done' ? 'finished' : 'stopped'} at step ${p.step}.`,
              'Open Checkpoint',
            )
            .then((a) => a && p.checkpoint && openCheckpoint(p.checkpoint, 'inspect'));
      }),
    ];
  }

  /** Takes up the job the job process runs (after a reload, or one started by another window). */
  private adopt(run: TrainRunResult & { job: NonNullable<TrainRunResult['job']> }): void {
    const ref = { jobId: run.job.jobId };
    this.job = {
      jobId: run.job.jobId,
      out: run.out,
      step: run.job.step,
      checkpoint: run.latest,
      subs: this.follow(ref, run.out),
    };
    this.status.text = `$(pulse) DDPM ${run.job.step}/${run.job.steps}`;
    this.status.show();
    void vscode.commands.executeCommand('setContext', 'ddpm.training', true);
  }

  /**
   * On activation (and DDPM: Show Training): connects to a job process that already runs and takes up its training
   * job, showing it in the run's view when one is open (restored), else in the status bar and a notification
   * (`open`: in a view at once). True when a job was found.
   */
  async reattach(open = false): Promise<boolean> {
    if (this.job) return true;
    if (!(await this.sidecar.attach())) return false;
    const run = await this.sidecar.request(TrainRunRequest, {}).catch(() => null);
    if (!run?.job || this.job) return this.job !== null;
    this.adopt({ ...run, job: run.job });
    const restored = this.panels.get(path.resolve(run.out));
    const live = { ...run.job, suggestNative: false };
    if (restored) await restored.showRun(run, live);
    else if (open) await this.panelFor(run.out).showRun(run, live);
    else {
      // VS Code restores the run's view shortly after activation, if it was open: no need to say more then.
      const jobId = run.job.jobId;
      setTimeout(() => {
        if (this.job?.jobId !== jobId || this.panels.has(path.resolve(run.out))) return;
        void vscode.window
          .showInformationMessage(
            `DDPM training of ${path.basename(run.out)} continues in the background (step ${this.job.step} of ${run.job?.steps}).`,
            'Show',
            'Stop',
          )
          .then(async (a) => {
            if (a === 'Stop') await this.stop();
            else if (a === 'Show') await this.reveal();
          });
      }, 3000);
    }
    return true;
  }

  /**
   * A Training view VS Code restored after a reload (its webview state names the run folder): re-attached to the job
   * training that run, else showing how the run ended, with Resume and its checkpoints.
   */
  async restore(existing: vscode.WebviewPanel, state: unknown): Promise<void> {
    const out = (state as { out?: unknown } | undefined)?.out;
    this.sidecar.log.info(
      `restoring a Training view${typeof out === 'string' ? ` of ${out}` : ' without a run folder'}`,
    );
    if (typeof out !== 'string') {
      // A view from before run folders were kept in its state: nothing to re-attach it to.
      existing.dispose();
      return;
    }
    const panel = this.panelFor(out, existing);
    await this.reattach().catch(() => false);
    let run: TrainRunResult | null = null;
    try {
      run = await this.sidecar.request(TrainRunRequest, { out });
    } catch (e) {
      if (!(e instanceof SidecarGoneError)) this.sidecar.log.warn(`the Training view of ${out}: ${errorMessage(e)}`);
    }
    const live = run?.job && this.job?.jobId === run.job.jobId ? { ...run.job, suggestNative: false } : null;
    await panel.showRun(run, live);
  }

  /** DDPM: Resume Training: `target` a run folder or checkpoint (explorer, inspector, Training view), else asked. */
  async resume(target?: vscode.Uri | string | (ResumeTarget & { steps?: number })): Promise<TrainResult | undefined> {
    if (this.job) return this.start();
    const t =
      target instanceof vscode.Uri
        ? resumeTarget(target.fsPath)
        : typeof target === 'string'
          ? resumeTarget(target)
          : (target ?? (await pickRunToResume()));
    if (!t) return undefined;
    let r;
    try {
      r = await resumeRequest(
        this.sidecar,
        t,
        typeof target === 'object' && !(target instanceof vscode.Uri) ? target.steps : undefined,
      );
    } catch (e) {
      if (!(e instanceof SidecarGoneError))
        void vscode.window.showErrorMessage(`DDPM: cannot resume ${path.basename(t.out)}: ${errorMessage(e)}`);
      return undefined;
    }
    return r ? this.start(r) : undefined;
  }

  /**
   * The window is closing (or reloading): the job process keeps training unless ddpm.train.onWindowClose says to stop
   * (with a checkpoint). VS Code gives extensions no way to ask at that moment, hence the setting.
   */
  async onWindowClose(): Promise<void> {
    const j = this.job;
    if (!j || setting<string>('train.onWindowClose') !== 'stopTraining') return;
    this.sidecar.log.info(`window closing: stopping the training of ${j.out} (ddpm.train.onWindowClose)`);
    await Promise.race([
      this.sidecar.request(TrainStopRequest, { jobId: j.jobId }).catch(() => undefined),
      new Promise((r) => setTimeout(r, 3000)),
    ]);
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
        data = await pickData(pick.source as DataKind, `DDPM: Train — ${pick.label.replace(/…$/, '')}`);
        if (!data) return undefined;
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
              : p === 'celebahq256'
                ? 'the paper’s 113.7M-parameter 256×256 model (CelebA-HQ, LSUN; a large GPU, days)'
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
    const budget = await this.budget(preset.label, Number(stepsText), setting<number>('train.keep'));
    const ws = vscode.workspace.workspaceFolders?.[0]?.uri;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    let out: string | undefined = ws ? vscode.Uri.joinPath(ws, 'runs', `${preset.label}-${stamp}`).fsPath : undefined;
    out = await vscode.window.showInputBox({
      title: 'DDPM: Train — output folder',
      value: out ?? '',
      prompt: `checkpoints, samples and the loss log go here${budget ? ` — ${budget.text}` : ''}`,
      validateInput: (v) => (path.isAbsolute(v) ? null : 'an absolute path'),
    });
    if (!out) return undefined;
    let keep = setting<number>('train.keep');
    if (budget?.confirm) {
      // A large model's checkpoints fill a disk quickly (cifar10: 571 MB each): say so, and offer to keep fewer.
      const fewer = keep > 1 ? await this.budget(preset.label, Number(stepsText), 1) : undefined;
      const start = 'Start training';
      const keepOne = fewer ? `Keep 1 checkpoint (${formatBytes(fewer.total)})` : undefined;
      const answer = await vscode.window.showWarningMessage(
        `DDPM: this run writes up to ${formatBytes(budget.total)} of checkpoints in ${out}.`,
        {
          modal: true,
          detail: `${budget.text}. Each checkpoint holds the weights, their EMA and Adam's two moments (16 bytes per parameter); older ones are deleted as new ones are saved (ddpm.train.keep = ${keep}).`,
        },
        ...[start, keepOne].filter((x): x is string => !!x),
      );
      if (!answer) return undefined;
      if (answer === keepOne) keep = 1;
    }
    return {
      data,
      preset: preset.label,
      steps: Number(stepsText),
      batch: setting<number>('train.batch'),
      out,
      keep,
    };
  }

  /** The checkpoints' disk use of a run of this preset, from the sidecar's preset sizes; undefined if unknown. */
  private async budget(preset: string, steps: number, keep: number): Promise<CheckpointBudget | undefined> {
    try {
      const info = await this.sidecar.request(InfoRequest, {});
      const p = info.presets.find((x) => x.name === preset);
      return p ? checkpointBudget(p.params, keep, steps, setting<number>('train.saveEvery')) : undefined;
    } catch {
      return undefined;
    }
  }

  async start(opts?: TrainOptions, folder?: vscode.Uri): Promise<TrainResult | undefined> {
    if (this.job) {
      const a = await vscode.window.showWarningMessage('A DDPM training job is already running.', 'Show it', 'Stop it');
      if (a === 'Show it') await this.reveal();
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
      keep: o.keep ?? setting<number>('train.keep'),
      sampleEvery: setting<number>('train.sampleEvery'),
      evalEvery: setting<number>('train.evalEvery'),
      workers: workersSetting('train.workers'),
      resume: true,
      ...(o.resumeFrom ? { resumeFrom: o.resumeFrom } : {}),
    };
    // One view per run: a resumed run comes back to its tab.
    const panel = this.panelFor(o.out);
    await panel.showRun(
      null,
      { jobId: 'starting', backend: { name: '…', device: 'starting' }, suggestNative: false },
      o,
    );
    let jobId: string;
    let backend: TrainResult['backend'];
    const ref = { jobId: '' };
    const subs = this.follow(ref, o.out);
    try {
      ({ jobId, backend } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'DDPM: starting training' },
        () => this.sidecar.request(TrainRequest, params),
      ));
    } catch (e) {
      subs.forEach((d) => d.dispose());
      startJob(this.sidecar.log, 'train', {
        data: params.data,
        preset: params.preset,
        steps: params.steps,
        out: params.out,
      }).failed(`could not start: ${errorMessage(e)}`);
      await panel.post({ type: 'ended', reason: 'failed', step: 0, checkpoint: null, error: errorMessage(e) });
      // Another window's job trains in the shared job process: take it up here and show it.
      if ((e as { code?: unknown }).code === ErrorCodes.JobRunning && (await this.reattach(true))) {
        void vscode.window.showWarningMessage(
          'DDPM: a training job (started in another window) is already running; it is shown here. Stop it to start another.',
        );
        return undefined;
      }
      // A lost sidecar has been reported once already (SidecarClient); anything else is said here, once.
      if (!(e instanceof SidecarGoneError))
        void vscode.window
          .showErrorMessage(`DDPM: could not start training: ${errorMessage(e)}`, 'Retry', 'Open Log')
          .then((a) => {
            if (a === 'Retry') void this.start(o);
            else if (a) this.sidecar.log.show();
          });
      return undefined;
    }
    ref.jobId = jobId;
    const record = startJob(this.sidecar.log, 'train', {
      jobId,
      data: params.data,
      preset: params.preset,
      steps: params.steps,
      batch: params.batch,
      out: params.out,
      lr: params.lr,
      warmup: params.warmup,
      emaDecay: params.emaDecay,
      saveEvery: params.saveEvery,
      sampleEvery: params.sampleEvery,
      keep: params.keep,
      backend: `${backend.name} (${backend.device})`,
    });
    this.job = { jobId, out: o.out, step: 0, checkpoint: null, subs, record };
    // wasm and tfjs-cpu are what a machine without a GPU or the native backend gets. The native CPU backend trains
    // mnist 1.9× and cifar10 3.4–3.7× faster than wasm on 2 threads (bench/RESULTS.md), but not tiny (its ops are too
    // small for libtensorflow's per-op cost), so the panel offers it for the other presets.
    const suggestNative = (backend.name === 'wasm' || backend.name === 'cpu') && o.preset !== 'tiny';
    // The run as the sidecar has it: a resumed run's earlier loss history and checkpoints, "resumed from step N".
    const run = await this.sidecar.request(TrainRunRequest, { out: o.out }).catch(() => null);
    if (run?.job) this.job.step = run.job.step;
    this.job.checkpoint = run?.latest ?? null;
    await panel.showRun(run, { jobId, backend, suggestNative }, o);
    this.status.text = '$(pulse) DDPM training';
    this.status.show();
    void vscode.commands.executeCommand('setContext', 'ddpm.training', true);
    return { jobId, backend };
  }

  private finish(p: { reason: string; step: number; checkpoint: string | null; error?: string }): void {
    const j = this.job;
    if (!j) return;
    this.job = null;
    const at = `step ${p.step}${p.checkpoint ? `, ${p.checkpoint}` : ''}`;
    if (p.reason === 'failed') j.record?.failed(`${p.error ?? 'unknown error'} (${at})`);
    else if (p.reason === 'stopped') j.record?.stopped(at);
    else j.record?.done(at);
    void this.panels
      .get(path.resolve(j.out))
      ?.post({ type: 'ended', reason: p.reason, step: p.step, checkpoint: p.checkpoint, error: p.error });
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
      if (!(e instanceof SidecarGoneError))
        void vscode.window.showErrorMessage(`DDPM: stop failed: ${errorMessage(e)}`);
      return undefined;
    }
  }

  dispose(): void {
    this.status.dispose();
    this.job?.subs.forEach((d) => d.dispose());
    this.disposables.forEach((d) => d.dispose());
  }
}

/** A checkpoint of a Training view: opened in the inspector, or sampled from (with the sampling settings). */
function openCheckpoint(file: string, action: 'inspect' | 'sample'): void {
  if (action === 'inspect')
    void vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'ddpm.checkpoint');
  else void vscode.commands.executeCommand('ddpm.sample', { checkpoint: file });
}
