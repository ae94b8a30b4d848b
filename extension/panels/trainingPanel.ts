/** The Training webview panel: one per training job; loss curve, stats, preview grid, checkpoints. */
import * as vscode from 'vscode';
import type { TrainingFromWebview, TrainingToWebview } from '../../webview/shared/messages.ts';
import { PanelHost } from './panelHost.ts';

export const TRAINING_VIEW = 'ddpm.training';

const BODY = `
<header><h1>DDPM Training</h1><span id="title"></span></header>
<div id="device"></div>
<div id="hint" hidden>Training on the CPU without a native backend. On the same cores the native CPU backend
  (libtensorflow) trains the mnist model about 2× and the CIFAR-10 model about 3.5× faster than WebAssembly; a GPU, far
  more.
  <button id="installNative">Install Native Backend…</button></div>
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
