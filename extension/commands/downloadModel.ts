/**
 * DDPM: Download Pretrained Model… — one of the paper's models (Ho et al. 2020: CIFAR-10, CelebA-HQ, LSUN church,
 * bedroom, cat) from the Hugging Face Hub (extension/hubDownload.ts: progress, cancel, resume, size and SHA-256
 * checks, VS Code's proxy), imported by the sidecar (ddpm/import) into the extension's global storage, where DDPM:
 * Sample and interpolation list it. Also: Import of a diffusers model folder or weights file (the inspector offers it).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { ImportRequest, type ImportResult } from '../../sidecar/protocol.ts';
import { DEFAULT_HUB, downloadModel, HubError, PRETRAINED_MODELS, type DownloadProgress } from '../hubDownload.ts';
import { setting } from '../settings.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { pretrainedCheckpoint } from '../pretrained.ts';
import { errorMessage, rememberCheckpoint } from './common.ts';
import { pickDiffusersModel } from '../pickers.ts';

/** For tests and scripts: which repository (no pick), at which revision. */
export interface DownloadCommandOptions {
  repo?: string;
  revision?: string;
  /** Do not offer to sample afterwards (the caller is about to). */
  quiet?: boolean;
  /** With `repo`: download and import again even if the checkpoint is there. */
  force?: boolean;
}

export interface DownloadCommandResult {
  checkpoint: string;
  repo: string;
  params: number;
  /** Whether it was already there (nothing downloaded). */
  cached: boolean;
}

/** Says what failed and why, with Retry (when given) and Open Log. */
function showFailure(sidecar: SidecarClient, what: string, e: unknown, retry?: () => unknown): void {
  const actions = retry ? ['Retry', 'Open Log'] : ['Open Log'];
  void vscode.window.showErrorMessage(`DDPM: ${what}: ${errorMessage(e)}`, ...actions).then((choice) => {
    if (choice === 'Open Log') sidecar.log.show();
    else if (choice === 'Retry') void retry?.();
  });
}

const mb = (b: number) => `${(b / 1e6).toFixed(b < 1e7 ? 1 : 0)} MB`;

function progressText(p: DownloadProgress): string {
  const eta =
    p.etaSeconds === null
      ? ''
      : ` · ${p.etaSeconds < 90 ? `${Math.ceil(p.etaSeconds)} s` : `${Math.ceil(p.etaSeconds / 60)} min`} left`;
  const rate = p.bytesPerSecond ? ` · ${mb(p.bytesPerSecond)}/s` : '';
  return `${mb(p.received)} of ${mb(p.total)}${rate}${eta}`;
}

/** The hub to download from: ddpm.hub.endpoint, else $HF_ENDPOINT (huggingface_hub's variable), else the Hub. */
export function hubEndpoint(): string {
  return setting<string>('hub.endpoint') || process.env.HF_ENDPOINT || DEFAULT_HUB;
}

async function pickModel(context: vscode.ExtensionContext): Promise<string | undefined> {
  type Item = vscode.QuickPickItem & { repo: string };
  const items: Item[] = PRETRAINED_MODELS.map((m) => ({
    label: m.label,
    description: `${m.resolution}×${m.resolution} · ${mb(m.approxBytes)} · ${(m.params / 1e6).toFixed(1)} M parameters${
      fs.existsSync(pretrainedCheckpoint(context, m.repo)) ? ' · downloaded' : ''
    }`,
    detail: `${m.repo}: ${m.what}`,
    repo: m.repo,
  }));
  const pick = await vscode.window.showQuickPick(items, {
    title: 'DDPM: Download Pretrained Model (the paper’s models, from the Hugging Face Hub)',
    placeHolder: 'Which model?',
    matchOnDetail: true,
  });
  return pick?.repo;
}

/** Imports a diffusers model (folder or weights file) into `out`, reporting on `progress`. */
async function importInto(
  sidecar: SidecarClient,
  source: string,
  out: string,
  repo: string | undefined,
): Promise<ImportResult> {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  return sidecar.request(ImportRequest, { path: source, out, ...(repo ? { repo } : {}) });
}

async function offerToSample(checkpoint: string, message: string, resolution: number): Promise<void> {
  const choice = await vscode.window.showInformationMessage(message, 'Sample', 'Interpolate Images…');
  if (choice === 'Sample')
    await vscode.commands.executeCommand('ddpm.sample', { checkpoint, n: resolution >= 128 ? 4 : 16 });
  else if (choice === 'Interpolate Images…') await vscode.commands.executeCommand('ddpm.interpolate');
}

export async function runDownloadPretrained(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  opts: DownloadCommandOptions = {},
): Promise<DownloadCommandResult | undefined> {
  const interactive = !opts.repo;
  const repo = opts.repo ?? (await pickModel(context));
  if (!repo) return undefined;
  const known = PRETRAINED_MODELS.find((m) => m.repo === repo);
  const checkpoint = pretrainedCheckpoint(context, repo);
  if (fs.existsSync(checkpoint) && ((interactive && opts.quiet) || (!interactive && !opts.force)))
    return { checkpoint, repo, params: 0, cached: true };
  if (fs.existsSync(checkpoint) && interactive) {
    const again = await vscode.window.showInformationMessage(
      `DDPM: ${known?.label ?? repo} is already downloaded.`,
      'Sample',
      'Download Again',
    );
    if (again === 'Sample')
      await vscode.commands.executeCommand('ddpm.sample', { checkpoint, n: (known?.resolution ?? 32) >= 128 ? 4 : 16 });
    if (again !== 'Download Again') return undefined;
  }
  const http = vscode.workspace.getConfiguration('http');
  const work = path.join(context.globalStorageUri.fsPath, 'hub', ...repo.split('/'), opts.revision ?? 'main');
  const endpoint = hubEndpoint();
  sidecar.log.info(`downloading ${repo} from ${endpoint} into ${work}`);
  try {
    const r = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `DDPM: ${known?.label ?? repo}`,
        cancellable: true,
      },
      async (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        let shown = 0;
        await downloadModel(repo, work, {
          endpoint,
          revision: opts.revision,
          proxy: http.get<string>('proxy') || undefined,
          strictSSL: http.get<boolean>('proxyStrictSSL') ?? true,
          token: process.env.HF_TOKEN || undefined,
          signal: ac.signal,
          userAgent: `ddpm-studio/${String(context.extension.packageJSON.version)} vscode/${vscode.version}`,
          onProgress: (p) => {
            // Notifications take increments in percent; the message says bytes, rate and time left.
            const pct = p.total ? (100 * p.received) / p.total : 0;
            progress.report({ increment: Math.max(0, pct - shown) * 0.95, message: progressText(p) });
            shown = Math.max(shown, pct);
          },
        });
        progress.report({ message: 'importing…' });
        const imported = await importInto(sidecar, work, checkpoint, repo);
        // The checkpoint holds the weights now; the download is not needed again.
        fs.rmSync(work, { recursive: true, force: true });
        return imported;
      },
    );
    rememberCheckpoint(context, checkpoint);
    for (const n of r.notes) sidecar.log.info(`import ${repo}: ${n}`);
    sidecar.log.info(`imported ${repo} → ${checkpoint} (${r.params} parameters)`);
    const message = `DDPM: ${known?.label ?? repo} is ready: ${r.model.imageSize}×${r.model.imageSize}, ${(r.params / 1e6).toFixed(1)} M parameters. DDPM: Sample lists it.`;
    if (interactive && !opts.quiet) void offerToSample(checkpoint, message, r.model.imageSize);
    else if (interactive) void vscode.window.showInformationMessage(message);
    return { checkpoint, repo, params: r.params, cached: false };
  } catch (e) {
    if ((e as Error).name === 'AbortError') {
      void vscode.window.showInformationMessage(
        `DDPM: download of ${repo} cancelled. Run DDPM: Download Pretrained Model… again to resume it.`,
      );
      if (!interactive) throw e;
      return undefined;
    }
    const what = e instanceof HubError ? `downloading ${repo} from ${new URL(endpoint).host}` : `importing ${repo}`;
    if (interactive)
      showFailure(sidecar, what, e, () => vscode.commands.executeCommand('ddpm.downloadPretrained', { repo }));
    else sidecar.log.error(`${what}: ${errorMessage(e)}`);
    if (!interactive) throw e;
    return undefined;
  }
}

/**
 * DDPM: Import Diffusers Model…: a UNet2DModel folder (or its weights file, from the inspector) into a checkpoint the
 * user chooses (default: beside the folder, `<name>.safetensors`). Returns the checkpoint.
 */
export async function runImportDiffusers(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  source?: vscode.Uri,
  out?: string,
): Promise<string | undefined> {
  let src = source?.fsPath;
  if (!src) src = await pickDiffusersModel('DDPM: Import Diffusers Model — the UNet2DModel');
  if (!src) return undefined;
  const folder = fs.statSync(src).isDirectory() ? src : path.dirname(src);
  const name = path.basename(folder) === 'unet' ? path.basename(path.dirname(folder)) : path.basename(folder);
  let target = out;
  if (!target) {
    const uri = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(path.dirname(folder), `${name}.safetensors`)),
      filters: { Checkpoints: ['safetensors'] },
      title: 'Save the imported model as',
    });
    target = uri?.fsPath;
  }
  if (!target) return undefined;
  try {
    const r = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `DDPM: importing ${name}…` },
      () => importInto(sidecar, src, target, undefined),
    );
    rememberCheckpoint(context, target);
    for (const n of r.notes) sidecar.log.info(`import ${src}: ${n}`);
    if (!out)
      void offerToSample(
        target,
        `DDPM: imported ${name}: ${r.model.imageSize}×${r.model.imageSize}, ${(r.params / 1e6).toFixed(1)} M parameters.`,
        r.model.imageSize,
      );
    return target;
  } catch (e) {
    if (out) throw e;
    showFailure(sidecar, `importing ${src}`, e);
    return undefined;
  }
}
