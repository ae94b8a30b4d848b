/**
 * Pieces shared by the commands: checkpoint choice (shipped models, recent, the workspace's, browse), save dialogs,
 * error text.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { InspectRequest } from '../../sidecar/protocol.ts';
import { checkpointSummary } from '../../webview/shared/classes.ts';
import { setting } from '../settings.ts';
import { SidecarGoneError, type SidecarClient } from '../sidecarClient.ts';
import { quickPickResult, workspaceCheckpoints } from '../pickers.ts';
import { downloadedModels } from '../pretrained.ts';
import { samePath } from '../samePath.ts';

const RECENT_KEY = 'ddpm.recentCheckpoints';

/** The shipped MNIST model: the default checkpoint when ddpm.defaultCheckpoint is empty. */
export function shippedCheckpoint(context: vscode.ExtensionContext): string {
  return vscode.Uri.joinPath(context.extensionUri, 'models', 'mnist.safetensors').fsPath;
}

/** Every model shipped in the extension's models/ folder (*.safetensors), MNIST first, then by name. */
export function shippedCheckpoints(context: vscode.ExtensionContext): string[] {
  const dir = vscode.Uri.joinPath(context.extensionUri, 'models').fsPath;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  } catch {
    return [];
  }
  const rank = (f: string) => (f === 'mnist.safetensors' ? 0 : 1);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map((f) => path.join(dir, f));
}

/** "Shipped MNIST model", "Shipped Fashion-MNIST model": the known datasets' names, else the file's. */
export function shippedLabel(file: string): string {
  const base = path.basename(file, '.safetensors');
  const known: Record<string, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10' };
  return `Shipped ${known[base] ?? base} model`;
}

export function rememberCheckpoint(context: vscode.ExtensionContext, file: string): void {
  const recent = context.globalState.get<string[]>(RECENT_KEY, []).filter((f) => !samePath(f, file));
  void context.globalState.update(RECENT_KEY, [file, ...recent].slice(0, 8));
}

/** A checkpoint in a few words from its header (preset, size, classes), for the pick; undefined if unreadable. */
export function describeCheckpoint(sidecar: SidecarClient): (file: string) => Promise<string | undefined> {
  return (file) => sidecar.request(InspectRequest, { path: file }).then(checkpointSummary, () => undefined);
}

/**
 * The checkpoint to use: ddpm.defaultCheckpoint (when set), the shipped models, recent ones, or one chosen from disk.
 * `describe` fills in the items' descriptions (from the headers) while the pick is open.
 */
export async function pickCheckpoint(
  context: vscode.ExtensionContext,
  useDefault = false,
  title = 'DDPM: Sample — checkpoint',
  describe?: (file: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  const configured = setting<string>('defaultCheckpoint');
  const fallback = configured || shippedCheckpoint(context);
  if (useDefault) return fallback;
  type Item = vscode.QuickPickItem & { file?: string; download?: boolean };
  const shipped = shippedCheckpoints(context);
  const items: Item[] = [];
  if (configured) items.push({ label: path.basename(configured), detail: configured, file: configured });
  for (const f of shipped.filter((f) => f !== configured)) items.push({ label: shippedLabel(f), file: f });
  if (!shipped.length && !configured) items.push({ label: shippedLabel(fallback), file: fallback });
  // The paper's models downloaded from the Hub (DDPM: Download Pretrained Model…), and the way to get one.
  items.push(
    { label: 'pretrained', kind: vscode.QuickPickItemKind.Separator },
    ...downloadedModels(context)
      .filter((d) => d.file !== configured)
      .map((d) => ({ label: d.label, description: d.repo, file: d.file })),
    {
      label: '$(cloud-download) Download Pretrained Model…',
      description: 'CIFAR-10, CelebA-HQ, LSUN church, bedroom, cat (Ho et al. 2020)',
      download: true,
    },
  );
  const listed = new Set(items.map((i) => i.file));
  const recent = context.globalState
    .get<string[]>(RECENT_KEY, [])
    .filter((f) => ![...listed].some((l) => l !== undefined && samePath(l, f)) && fs.existsSync(f))
    .map((f) => ({ label: path.basename(f), detail: f, file: f }));
  if (recent.length) items.push({ label: 'recent', kind: vscode.QuickPickItemKind.Separator }, ...recent);
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: 'Browse…', description: 'a .safetensors checkpoint' });
  const describeItem = (item: Item, settled: () => boolean, refresh: () => void) => {
    if (!item.file || !describe) return;
    void describe(item.file).then((d) => {
      if (settled() || !d) return;
      item.description = d;
      refresh();
    });
  };

  const qp = vscode.window.createQuickPick<Item>();
  qp.title = title;
  qp.placeholder = 'Which checkpoint?';
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.items = items;
  const { chosen: picked, settled } = quickPickResult(qp);
  qp.show();
  // Re-set the items for a new description or section; keep the row the user is on (the first one when none is yet).
  const refresh = () => {
    const active = qp.activeItems;
    qp.items = items;
    if (active.length) qp.activeItems = active;
  };
  for (const item of items) describeItem(item, settled, refresh);
  // The workspace's checkpoints (runs' latest and ckpt-* files, newest first), before Browse…
  void workspaceCheckpoints().then(
    (found) => {
      const listedNow = new Set(items.map((i) => i.file));
      const more: Item[] = found
        .filter((c) => !listedNow.has(c.file))
        .map((c) => ({ label: c.label, detail: c.description, file: c.file }));
      if (settled() || !more.length) return;
      items.splice(items.length - 2, 0, { label: 'workspace', kind: vscode.QuickPickItemKind.Separator }, ...more);
      refresh();
      // Headers are read for the first few only: each is a request to the sidecar.
      for (const item of more.slice(0, 12)) describeItem(item, settled, refresh);
    },
    () => undefined,
  );
  const pick = await picked;
  if (!pick) return undefined;
  if (pick.file) return pick.file;
  if (pick.download)
    return (
      await vscode.commands.executeCommand<{ checkpoint: string } | undefined>('ddpm.downloadPretrained', {
        quiet: true,
      })
    )?.checkpoint;
  const chosen = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: { Checkpoints: ['safetensors'] },
    title: 'Choose a DDPM checkpoint',
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
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

/**
 * Says once, in words, that `what` failed and why, with actions (`Retry`, …) and Open Log. A request the lost sidecar
 * took with it (SidecarGoneError) is not reported again: the sidecar's own notification said what happened.
 */
export function showFailure(
  sidecar: SidecarClient,
  what: string,
  e: unknown,
  actions: { title: string; run: () => unknown }[] = [],
): void {
  if (e instanceof SidecarGoneError) return;
  void vscode.window
    .showErrorMessage(`DDPM: ${what}: ${errorMessage(e)}`, ...actions.map((a) => a.title), 'Open Log')
    .then((choice) => {
      if (choice === 'Open Log') sidecar.log.show();
      else actions.find((a) => a.title === choice)?.run();
    });
}
