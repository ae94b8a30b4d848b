/**
 * DDPM: Show Backend Info — the sidecar's backend report as a readable document (../backendInfoReport.ts) in VS Code's
 * Markdown preview; the Markdown source where the preview is unavailable. The document is virtual (a content provider
 * of its own scheme): nothing is written to disk, and reopening it shows the state of now.
 */
import os from 'node:os';
import * as vscode from 'vscode';
import { InfoRequest, type InfoResult } from '../../sidecar/protocol.ts';
import { backendInfoMarkdown } from '../backendInfoReport.ts';
import { installedNativeBackend, nvidiaGpuMayExist } from '../nativeBackendInstaller.ts';
import { setting, workersSetting } from '../settings.ts';
import type { SidecarClient } from '../sidecarClient.ts';

export const BACKEND_INFO_SCHEME = 'ddpm-info';
const URI = vscode.Uri.from({ scheme: BACKEND_INFO_SCHEME, path: '/DDPM Backend Info.md' });

export class BackendInfoDocument implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private text = '';
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly registration: vscode.Disposable;

  constructor() {
    this.registration = vscode.workspace.registerTextDocumentContentProvider(BACKEND_INFO_SCHEME, this);
  }

  provideTextDocumentContent(): string {
    return this.text;
  }

  set(text: string): void {
    this.text = text;
    this.changed.fire(URI);
  }

  dispose(): void {
    this.registration.dispose();
    this.changed.dispose();
  }
}

export interface BackendInfoShown {
  info: InfoResult;
  markdown: string;
  /** 'preview' (Markdown preview) or 'source' (the preview command was unavailable). */
  shownAs: 'preview' | 'source';
}

export async function runShowBackendInfo(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  doc: BackendInfoDocument,
): Promise<BackendInfoShown> {
  const info = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'DDPM: asking the sidecar for its backend' },
    () => sidecar.request(InfoRequest, {}),
  );
  const markdown = backendInfoMarkdown({
    info,
    setting: setting<string>('backend'),
    cores: os.availableParallelism(),
    sampleWorkers: workersSetting('sampleWorkers'),
    trainWorkers: workersSetting('train.workers'),
    native: installedNativeBackend(context.globalStorageUri.fsPath),
    gpuMayExist: nvidiaGpuMayExist(),
  });
  doc.set(markdown);
  sidecar.log.info(`backend info: ${info.backend.name} (${info.backend.device})`);
  try {
    await vscode.commands.executeCommand('markdown.showPreview', URI);
    return { info, markdown, shownAs: 'preview' };
  } catch (e) {
    sidecar.log.warn(
      `Markdown preview unavailable (${e instanceof Error ? e.message : String(e)}): showing the source`,
    );
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(URI), { preview: true });
    return { info, markdown, shownAs: 'source' };
  }
}
