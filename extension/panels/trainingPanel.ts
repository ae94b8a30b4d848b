/** The Training webview panel: one per training job; loss curve, stats, preview grid, checkpoints. */
import * as vscode from 'vscode';
import markup from '../../webview/training/index.html';
import type { TrainingFromWebview, TrainingToWebview } from '../../webview/shared/messages.ts';
import type { WebviewView } from './html.ts';
import { PanelHost } from './panelHost.ts';

export const TRAINING_VIEW = 'ddpm.training';
const VIEW: WebviewView = { name: 'training', viewType: TRAINING_VIEW, markup };

export class TrainingPanel extends PanelHost<TrainingToWebview, TrainingFromWebview> {
  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    super(extensionUri, VIEW, title, existing);
  }
}
