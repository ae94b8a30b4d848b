/** The Training webview panel: one per training job; loss curve, stats, preview grid, checkpoints. */
import * as vscode from 'vscode';
import type { TrainingFromWebview, TrainingToWebview } from '../../webview/shared/messages.ts';
import { PanelHost } from './panelHost.ts';

export const TRAINING_VIEW = 'ddpm.training';

const BODY = `
<header><h1>DDPM Training</h1><span id="title"></span></header>
<section><div id="stats">starting…</div>
  <label><input id="logScale" type="checkbox"> log scale</label> <button id="stop">Stop (saves a checkpoint)</button></section>
<section id="loss"></section>
<section class="row">
  <figure><canvas id="preview" width="0" height="0"></canvas><figcaption id="previewCaption">no samples yet</figcaption></figure>
  <div><h2>Checkpoints</h2><ul id="checkpoints"></ul></div>
</section>`;

export class TrainingPanel extends PanelHost<TrainingToWebview, TrainingFromWebview> {
  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    super(extensionUri, TRAINING_VIEW, 'training', title, BODY, existing);
  }
}
