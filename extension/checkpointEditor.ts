/**
 * The checkpoint inspector: a read-only custom editor for *.safetensors. Reads only the header (via the sidecar) to
 * show the model card, loss history and tensor table; statistics, EMA differences and a preview grid are computed by
 * the sidecar on request. Foreign safetensors files get the table and statistics; corrupt files show the error.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { EmaDiffRequest, InspectRequest, SampleRequest, TensorStatsRequest } from '../sidecar/protocol.ts';
import type { CheckpointFromWebview, CheckpointToWebview } from '../webview/shared/messages.ts';
import type { SidecarClient } from './sidecarClient.ts';
import { renderHtml, webviewOptions } from './panels/html.ts';
import { errorMessage } from './commands/common.ts';

export const CHECKPOINT_EDITOR = 'ddpm.checkpoint';

const BODY = `
<header><h1>DDPM Checkpoint</h1><span id="path"></span></header>
<div id="error" hidden></div>
<div id="note" hidden></div>
<section class="row">
  <table id="card"></table>
  <div><button id="sample">Sample from this checkpoint</button> <button id="previewBtn">Preview grid</button>
    <figure><canvas id="preview" width="0" height="0"></canvas><figcaption id="previewCaption"></figcaption></figure></div>
</section>
<section id="lossSection"><h2>Loss</h2><div id="loss"></div></section>
<section id="emaSection" hidden><h2>EMA vs raw weights</h2><div id="ema"></div></section>
<section><h2>Tensors <span id="count"></span></h2>
  <input id="filter" type="search" placeholder="filter by name or dtype">
  <select id="sort"><option value="name">sort by name</option><option value="params">by #params</option><option value="shape">by shape</option><option value="dtype">by dtype</option></select>
  <label><input id="desc" type="checkbox"> descending</label>
  <div class="row"><div id="table"></div><div id="statsPanel"><h3 id="statsName">select a tensor</h3><pre id="stats"></pre><canvas id="hist" width="320" height="120"></canvas></div></div>
</section>`;

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
    return vscode.window.registerCustomEditorProvider(CHECKPOINT_EDITOR, new CheckpointEditorProvider(context, sidecar), {
      webviewOptions: { retainContextWhenHidden: true },
      supportsMultipleEditorsPerDocument: true,
    });
  }

  openCustomDocument(uri: vscode.Uri): CheckpointDocument {
    return new CheckpointDocument(uri);
  }

  async resolveCustomEditor(doc: CheckpointDocument, panel: vscode.WebviewPanel): Promise<void> {
    const file = doc.uri.fsPath;
    panel.webview.options = webviewOptions(this.context.extensionUri);
    panel.webview.html = renderHtml(panel.webview, this.context.extensionUri, 'checkpoint', path.basename(file), BODY);
    const post = (m: CheckpointToWebview) => void panel.webview.postMessage(m);
    panel.webview.onDidReceiveMessage(async (m: CheckpointFromWebview) => {
      if (m.type === 'ready') {
        post({ type: 'loading', path: file });
        const t0 = Date.now();
        try {
          const r = await this.sidecar.request(InspectRequest, { path: file });
          const ours = r.format !== null;
          const m2 = r.model as { imageSize?: number; channels?: number; ch?: number; chMult?: number[]; numResBlocks?: number; attnResolutions?: number[] } | undefined;
          const card = ours
            ? [
                { label: 'kind', value: r.kind ?? '' },
                { label: 'preset', value: r.preset ?? '(custom)' },
                { label: 'parameters', value: r.params.toLocaleString('en-US') },
                { label: 'step', value: String(r.step ?? '') },
                { label: 'images', value: m2 ? `${m2.imageSize}×${m2.imageSize}×${m2.channels}` : '' },
                { label: 'architecture', value: m2 ? `ch ${m2.ch}, mult (${m2.chMult?.join(',')}), ${m2.numResBlocks} res blocks, attention at ${m2.attnResolutions?.join(', ') || 'middle only'}` : '' },
                { label: 'schedule', value: r.schedule ? `${String(r.schedule.kind)}, T = ${String(r.schedule.T)}` : '' },
                { label: 'dataset', value: r.data ? `${r.data.source} (${r.data.size.toLocaleString('en-US')} images)` : '' },
                { label: 'backend', value: r.backend ?? '' },
                { label: 'created', value: r.created ?? '' },
                { label: 'file size', value: `${(r.fileSize / 2 ** 20).toFixed(1)} MB` },
              ]
            : [
                { label: 'format', value: 'foreign safetensors file (not a DDPM Studio checkpoint)' },
                { label: 'values', value: r.params.toLocaleString('en-US') },
                { label: 'file size', value: `${(r.fileSize / 2 ** 20).toFixed(1)} MB` },
                ...Object.entries(r.metadata).map(([label, value]) => ({ label: `metadata: ${label}`, value: value.length > 200 ? `${value.slice(0, 200)}…` : value })),
              ];
          post({ type: 'header', path: file, fileSize: r.fileSize, ours, card, tensors: r.tensors, lossHistory: r.lossHistory, openMs: Date.now() - t0 });
          if (ours) {
            const d = await this.sidecar.request(EmaDiffRequest, { path: file }).catch(() => null);
            if (d) post({ type: 'emaDiff', relative: d.relative, top: d.top });
          }
        } catch (e) {
          post({ type: 'error', path: file, message: errorMessage(e) });
        }
      } else if (m.type === 'stats') {
        try {
          const s = await this.sidecar.request(TensorStatsRequest, { path: file, name: m.name, bins: 40 });
          post({ type: 'stats', name: m.name, min: s.min, max: s.max, mean: s.mean, std: s.std, count: s.count, edges: s.histogram.edges, counts: s.histogram.counts });
        } catch (e) {
          post({ type: 'statsError', name: m.name, message: errorMessage(e) });
        }
      } else if (m.type === 'sample') {
        void vscode.commands.executeCommand('ddpm.sample', { checkpoint: file });
      } else if (m.type === 'preview') {
        try {
          const r = await this.sidecar.request(SampleRequest, { checkpoint: file, n: 16, steps: 20, seed: 0 });
          post({ type: 'preview', png: r.grid, seconds: r.seconds });
        } catch (e) {
          post({ type: 'previewError', message: errorMessage(e) });
        }
      }
    });
  }
}
