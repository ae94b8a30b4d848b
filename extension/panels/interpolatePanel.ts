/** The Interpolation webview panel: one per DDPM: Interpolate run; the inputs, one strip per t, Save as PNG. */
import fs from 'node:fs';
import * as vscode from 'vscode';
import markup from '../../webview/interpolate/index.html';
import type { InterpolateFromWebview, InterpolateToWebview } from '../../webview/shared/messages.ts';
import { saveDialog } from '../commands/common.ts';
import type { WebviewView } from './html.ts';
import { PanelHost } from './panelHost.ts';

export const INTERPOLATE_VIEW = 'ddpm.interpolate';
const VIEW: WebviewView = { name: 'interpolate', viewType: INTERPOLATE_VIEW, markup };

export class InterpolatePanel extends PanelHost<InterpolateToWebview, InterpolateFromWebview> {
  /** Where the next PNG the webview composes goes instead of a save dialog (a command's `saveTo`). */
  savePng: ((png: string) => void) | null = null;

  constructor(extensionUri: vscode.Uri, title: string, existing?: vscode.WebviewPanel) {
    super(extensionUri, VIEW, title, existing);
    // Save as PNG… works in a panel restored after a reload too, where no command run is attached.
    this.onMessage(async (m) => {
      if (m.type !== 'save') return;
      if (this.savePng) return this.savePng(m.png);
      const target = await saveDialog('ddpm-interpolation.png');
      if (target) fs.writeFileSync(target.fsPath, Buffer.from(m.png, 'base64'));
    });
  }
}
