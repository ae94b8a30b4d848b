/** The Trajectory webview panel: one per sampling run; shows x_t and x̂0 live, a timeline, and the final grid. */
import * as vscode from 'vscode';
import markup from '../../webview/trajectory/index.html';
import type { TrajectoryFromWebview, TrajectoryToWebview } from '../../webview/shared/messages.ts';
import type { WebviewView } from './html.ts';
import { PanelHost } from './panelHost.ts';

export const TRAJECTORY_VIEW = 'ddpm.trajectory';
const VIEW: WebviewView = { name: 'trajectory', viewType: TRAJECTORY_VIEW, markup };

export class TrajectoryPanel extends PanelHost<TrajectoryToWebview, TrajectoryFromWebview> {
  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    super(extensionUri, VIEW, title, existing);
  }
}
