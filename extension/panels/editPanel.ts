/** The editing webview panel: one per DDPM: Inpaint Image… or DDPM: Image to Image… (an image, a checkpoint, runs). */
import * as vscode from 'vscode';
import markup from '../../webview/edit/index.html';
import type { EditFromWebview, EditToWebview } from '../../webview/shared/messages.ts';
import type { WebviewView } from './html.ts';
import { PanelHost } from './panelHost.ts';

export const EDIT_VIEW = 'ddpm.edit';
const VIEW: WebviewView = { name: 'edit', viewType: EDIT_VIEW, markup };

export class EditPanel extends PanelHost<EditToWebview, EditFromWebview> {
  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    super(extensionUri, VIEW, title, existing);
  }
}
