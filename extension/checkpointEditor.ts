/**
 * The checkpoint inspector: a read-only custom editor for *.safetensors. Reads only the header (via the sidecar) to
 * show the model card, loss history and tensor table; statistics, EMA differences and a preview grid are computed by
 * the sidecar on request. Foreign safetensors files get the table and statistics; corrupt files show the error.
 */
import { startJob } from './jobLog.ts';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import * as vscode from 'vscode';
import { CancellationTokenSource } from 'vscode-jsonrpc';
import {
  EmaDiffRequest,
  EvaluateProgressNotification,
  EvaluateRequest,
  InspectRequest,
  SampleRequest,
  TensorStatsRequest,
} from '../sidecar/protocol.ts';
import markup from '../webview/checkpoint/index.html';
import type { CheckpointFromWebview, CheckpointToWebview } from '../webview/shared/messages.ts';
import type { SidecarClient } from './sidecarClient.ts';
import type { WebviewView } from './panels/html.ts';
import { PanelHost } from './panels/panelHost.ts';
import { documentFile } from './documentFile.ts';
import { errorMessage, showFailure } from './commands/common.ts';
import { askClassAndGuidance } from './commands/sample.ts';
import { checkpointClasses } from '../webview/shared/classes.ts';
import { evalKeyOf } from '../webview/shared/evalResults.ts';
import { askEvaluation, readEvalFile, storeEvaluation } from './evaluation.ts';
import { workersSetting } from './settings.ts';

export const CHECKPOINT_EDITOR = 'ddpm.checkpoint';
const VIEW: WebviewView = { name: 'checkpoint', viewType: CHECKPOINT_EDITOR, markup };

class CheckpointDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

export class CheckpointEditorProvider implements vscode.CustomReadonlyEditorProvider<CheckpointDocument> {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly sidecar: SidecarClient,
  ) {}

  static register(context: vscode.ExtensionContext, sidecar: SidecarClient): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(
      CHECKPOINT_EDITOR,
      new CheckpointEditorProvider(context, sidecar),
      {
        webviewOptions: { retainContextWhenHidden: true },
        supportsMultipleEditorsPerDocument: true,
      },
    );
  }

  openCustomDocument(uri: vscode.Uri): CheckpointDocument {
    return new CheckpointDocument(uri);
  }

  async resolveCustomEditor(doc: CheckpointDocument, panel: vscode.WebviewPanel): Promise<void> {
    const file = doc.uri.fsPath;
    const host = new PanelHost<CheckpointToWebview, CheckpointFromWebview>(
      this.context.extensionUri,
      VIEW,
      path.basename(file),
      panel,
    );
    const post = (m: CheckpointToWebview) => void host.post(m);
    let evaluation: CancellationTokenSource | null = null;
    panel.onDidDispose(() => evaluation?.cancel());
    // Only files on disk: the sidecar reads paths (documentFile.ts).
    const onDisk = documentFile(doc.uri);
    host.onMessage(async (m) => {
      if ('error' in onDisk) {
        if (m.type === 'ready') post({ type: 'error', path: doc.uri.toString(), message: onDisk.error });
        return;
      }
      switch (m.type) {
        case 'ready': {
          post({ type: 'loading', path: file });
          const t0 = Date.now();
          try {
            const inspect = await this.sidecar.request(InspectRequest, { path: file });
            post({ type: 'header', inspect, openMs: Date.now() - t0 });
            if (inspect.format !== null) {
              post({ type: 'evalStored', entries: readEvalFile(file).entries });
              const diff = await this.sidecar.request(EmaDiffRequest, { path: file }).catch(() => null);
              if (diff) post({ type: 'emaDiff', diff });
            }
          } catch (e) {
            post({ type: 'error', path: file, message: errorMessage(e) });
          }
          break;
        }
        case 'stats':
          try {
            post({
              type: 'stats',
              stats: await this.sidecar.request(TensorStatsRequest, { path: file, name: m.name, bins: 40 }),
            });
          } catch (e) {
            post({ type: 'statsError', name: m.name, message: errorMessage(e) });
          }
          break;
        case 'sample': {
          // The same class and guidance choice as DDPM: Sample (nothing to ask for an unconditional checkpoint).
          const header = await this.sidecar.request(InspectRequest, { path: file }).catch(() => undefined);
          const choice = await askClassAndGuidance(checkpointClasses(header));
          if (choice) void vscode.commands.executeCommand('ddpm.sample', { checkpoint: file, ...choice });
          break;
        }
        case 'resume':
          void vscode.commands.executeCommand('ddpm.resumeTraining', vscode.Uri.file(file));
          break;
        case 'importDiffusers':
          void vscode.commands.executeCommand('ddpm.importDiffusers', vscode.Uri.file(file));
          break;
        case 'evaluate':
          if (!evaluation) await this.evaluate(file, post, (c) => (evaluation = c));
          break;
        case 'stopEval':
          evaluation?.cancel();
          break;
        case 'preview':
          try {
            const r = await this.sidecar.request(SampleRequest, { checkpoint: file, n: 16, steps: 20, seed: 0 });
            post({ type: 'preview', png: r.grid, seconds: r.seconds });
          } catch (e) {
            post({ type: 'previewError', message: errorMessage(e) });
          }
          break;
      }
    });
  }

  /**
   * Evaluate…: asks what to evaluate, runs ddpm/evaluate with its progress in the view (Stop cancels it through the
   * request's CancellationToken: $/cancelRequest), stores the result beside the checkpoint and shows it.
   */
  private async evaluate(
    file: string,
    post: (m: CheckpointToWebview) => void,
    running: (c: CancellationTokenSource | null) => void,
  ): Promise<void> {
    const header = await this.sidecar.request(InspectRequest, { path: file }).catch(() => undefined);
    const choice = await askEvaluation(header?.data?.source);
    if (!choice) return;
    const cts = new CancellationTokenSource();
    running(cts);
    const token = randomUUID();
    const sub = this.sidecar.onNotification(EvaluateProgressNotification, (p) => {
      if (p.token === token) post({ type: 'evalProgress', stage: p.stage, done: p.done, total: p.total });
    });
    post({ type: 'evalStart', ...choice });
    const job = startJob(this.sidecar.log, 'evaluate', { checkpoint: file, ...choice });
    try {
      const result = await this.sidecar.request(
        EvaluateRequest,
        {
          checkpoint: file,
          data: choice.data,
          n: choice.n,
          quality: choice.quality,
          token,
          workers: workersSetting('sampleWorkers'),
        },
        cts.token,
      );
      const b = result.bpd;
      const q = result.quality;
      job.done(
        [
          b ? `${b.mean.toFixed(3)}${b.stderr !== null ? ` ± ${b.stderr.toFixed(3)}` : ''} bits/dim` : '',
          q ? `Fréchet distance ${q.frechetDistance.toFixed(2)}` : '',
          `${result.n} images, step ${result.step}`,
        ]
          .filter(Boolean)
          .join(', '),
      );
      let entries;
      const entry = { key: evalKeyOf(result), at: new Date().toISOString(), result };
      try {
        entries = storeEvaluation(file, entry).entries;
      } catch (e) {
        entries = [entry, ...readEvalFile(file).entries];
        void vscode.window.showWarningMessage(
          `DDPM: the evaluation could not be stored beside ${file}: ${errorMessage(e)}`,
        );
      }
      post({ type: 'evalStored', entries });
    } catch (e) {
      const cancelled = cts.token.isCancellationRequested;
      if (cancelled) job.stopped();
      else job.failed(errorMessage(e));
      post({ type: 'evalError', message: cancelled ? 'stopped' : errorMessage(e), cancelled });
      if (!cancelled) showFailure(this.sidecar, 'evaluation failed', e);
    } finally {
      sub.dispose();
      cts.dispose();
      running(null);
    }
  }
}
