/** The Trajectory webview panel: one per sampling run; shows x_t and x̂0 live, a timeline, and the final grid. */
import * as vscode from 'vscode';
import type { TrajectoryFromWebview, TrajectoryToWebview } from '../../webview/shared/messages.ts';
import { PanelHost } from './panelHost.ts';

export const TRAJECTORY_VIEW = 'ddpm.trajectory';

const BODY = `
<header><h1>DDPM Trajectory</h1><span id="caption"></span></header>
<section class="row">
  <figure><canvas id="xt" width="0" height="0"></canvas><figcaption>x<sub>t</sub></figcaption></figure>
  <figure><canvas id="x0" width="0" height="0"></canvas><figcaption>x̂<sub>0</sub> (prediction)</figcaption></figure>
  <figure><canvas id="grid" width="0" height="0"></canvas><figcaption>final samples</figcaption></figure>
</section>
<section class="controls">
  <input id="timeline" type="range" min="0" max="0" value="0" aria-label="timeline">
  <span id="t"></span> <span id="rate"></span>
</section>
<section class="buttons">
  <button id="stop">Stop</button><button id="again">Sample again</button>
  <button id="saveGrid">Save grid as PNG…</button><button id="saveStrip">Save trajectory strip as PNG…</button>
</section>`;

export class TrajectoryPanel extends PanelHost<TrajectoryToWebview, TrajectoryFromWebview> {
  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    super(extensionUri, TRAJECTORY_VIEW, 'trajectory', title, BODY, existing);
  }
}
