/**
 * The checkpoint inspector: a read-only custom editor for *.safetensors. Reads only the header (via the sidecar) to
 * show the model card, loss history and tensor table; statistics, EMA differences and a preview grid are computed by
 * the sidecar on request. Foreign safetensors files get the table and statistics; corrupt files show the error.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { EmaDiffRequest, InspectRequest, SampleRequest, TensorStatsRequest } from '../sidecar/protocol.ts';
import markup from '../webview/checkpoint/index.html';
import type { CheckpointFromWebview, CheckpointToWebview } from '../webview/shared/messages.ts';
import type { SidecarClient } from './sidecarClient.ts';
import type { WebviewView } from './panels/html.ts';
import { PanelHost } from './panels/panelHost.ts';
import { errorMessage } from './commands/common.ts';
import { askClassAndGuidance } from './commands/sample.ts';
import { checkpointClasses } from '../webview/shared/classes.ts';

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
    host.onMessage(async (m) => {
      switch (m.type) {
        case 'ready': {
          post({ type: 'loading', path: file });
          const t0 = Date.now();
          try {
            const inspect = await this.sidecar.request(InspectRequest, { path: file });
            post({ type: 'header', inspect, openMs: Date.now() - t0 });
            if (inspect.format !== null) {
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
}
