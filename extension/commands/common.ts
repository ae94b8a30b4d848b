/** Pieces shared by the commands: checkpoint choice (shipped model, recent, browse), save dialogs, error text. */
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { setting } from '../settings.ts';

const RECENT_KEY = 'ddpm.recentCheckpoints';

export function shippedCheckpoint(context: vscode.ExtensionContext): string {
  return vscode.Uri.joinPath(context.extensionUri, 'models', 'mnist.safetensors').fsPath;
}

export function rememberCheckpoint(context: vscode.ExtensionContext, file: string): void {
  const recent = context.globalState.get<string[]>(RECENT_KEY, []).filter((f) => f !== file);
  void context.globalState.update(RECENT_KEY, [file, ...recent].slice(0, 8));
}

/** The checkpoint to use: the setting, the shipped model, recent ones, or one chosen from disk. */
export async function pickCheckpoint(
  context: vscode.ExtensionContext,
  useDefault = false,
  title = 'DDPM: Sample — checkpoint',
): Promise<string | undefined> {
  const configured = setting<string>('defaultCheckpoint');
  const fallback = configured || shippedCheckpoint(context);
  if (useDefault) return fallback;
  const recent = context.globalState.get<string[]>(RECENT_KEY, []).filter((f) => f !== fallback && fs.existsSync(f));
  type Item = vscode.QuickPickItem & { file?: string };
  const items: Item[] = [
    { label: configured ? path.basename(configured) : 'Shipped MNIST model', description: fallback, file: fallback },
    ...recent.map((f) => ({ label: path.basename(f), description: f, file: f })),
    { label: 'Browse…', description: 'a .safetensors checkpoint' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title });
  if (!pick) return undefined;
  if (pick.file) return pick.file;
  const chosen = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: { Checkpoints: ['safetensors'] },
    title: 'Choose a DDPM checkpoint',
  });
  return chosen?.[0]?.fsPath;
}

export async function saveDialog(name: string): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  return vscode.window.showSaveDialog({
    defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
    filters: { 'PNG image': ['png'] },
  });
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
