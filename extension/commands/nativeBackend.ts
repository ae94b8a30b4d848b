/**
 * DDPM: Install CUDA Backend / Install Native CPU Backend / Remove Native Backend, each in the palette only where it
 * applies (context keys set here). The work is in ../nativeBackendInstaller.ts; this adds
 * the choice of package, a cancellable progress notification, npm's output in an output channel, clear errors, and
 * a restart of the sidecar so that `auto` picks the new backend.
 */
import * as vscode from 'vscode';
import {
  installedNativeBackend,
  installNativeBackend,
  NATIVE_PACKAGES,
  NATIVE_VERSION,
  NativeInstallError,
  nvidiaGpuMayExist,
  removeNativeBackend,
  type NativeVariant,
} from '../nativeBackendInstaller.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { errorMessage } from './common.ts';

/** Options a caller (tests, or another extension) may pass instead of answering the quick pick. */
export interface InstallCommandOptions {
  variant?: NativeVariant;
  packageSpec?: string;
  /** Extra environment for npm (e.g. a registry or TFJS_NODE_CDN_STORAGE mirror). */
  env?: Record<string, string>;
  /** The packages the quick pick offers (DDPM: Install Native CPU Backend offers the CPU one only). */
  variants?: NativeVariant[];
}

/** The context keys the palette's `when` clauses read (package.json, menus.commandPalette). */
export interface NativeContext {
  /** An NVIDIA driver is present: DDPM: Install CUDA Backend applies. */
  'ddpm.gpuMayExist': boolean;
  /** The installed native backend's variant, '' when none: DDPM: Remove Native Backend applies when set. */
  'ddpm.nativeBackend': NativeVariant | '';
}

let lastContext: NativeContext | null = null;

/** Sets the context keys from this machine and the install on disk; returns what it set. */
export function updateNativeContext(context: vscode.ExtensionContext): NativeContext {
  const keys: NativeContext = {
    'ddpm.gpuMayExist': nvidiaGpuMayExist(),
    'ddpm.nativeBackend': installedNativeBackend(context.globalStorageUri.fsPath)?.variant ?? '',
  };
  for (const [k, v] of Object.entries(keys)) void vscode.commands.executeCommand('setContext', k, v);
  lastContext = keys;
  return keys;
}

/** What updateNativeContext last set (an internal command returns it to the tests). */
export const nativeContext = (): NativeContext | null => lastContext;

export interface InstallCommandResult {
  ok: boolean;
  device?: string;
  error?: string;
  kind?: string;
}

let channel: vscode.OutputChannel | null = null;
const output = (): vscode.OutputChannel => (channel ??= vscode.window.createOutputChannel('DDPM Native Backend'));

export async function runInstallNativeBackend(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  isTraining: () => boolean,
  opts: InstallCommandOptions = {},
): Promise<InstallCommandResult> {
  let variant = opts.variant;
  if (!variant) {
    const current = installedNativeBackend(context.globalStorageUri.fsPath);
    type Item = vscode.QuickPickItem & { variant: NativeVariant };
    const all: Item[] = [
      {
        variant: 'cuda',
        label: 'CUDA (NVIDIA GPU)',
        description: `${NATIVE_PACKAGES.cuda}@${NATIVE_VERSION}`,
        detail:
          'libtensorflow 2.9 for CUDA 11.2 + cuDNN 8.1 (Linux and Windows, x64). Needs an NVIDIA driver and those CUDA libraries.',
      },
      {
        variant: 'cpu',
        label: 'Native CPU',
        description: `${NATIVE_PACKAGES.cpu}@${NATIVE_VERSION}`,
        detail:
          'libtensorflow 2.9 for the CPU: multithreaded; trains the mnist model about 2× and the CIFAR-10 model about 3.5× faster than the built-in WebAssembly backend on the same cores.',
      },
    ];
    const items = all.filter((i) => !opts.variants || opts.variants.includes(i.variant));
    const pick = await vscode.window.showQuickPick(items, {
      title: 'DDPM: Install a native TensorFlow backend',
      placeHolder: current
        ? `Installed now: ${current.package} (${current.device}). Pick one to install instead.`
        : 'npm downloads the package and libtensorflow (a few hundred MB).',
    });
    if (!pick) return { ok: false, kind: 'cancelled' };
    variant = pick.variant;
  }
  const out = output();
  out.appendLine(
    `--- ${new Date().toISOString()}: installing ${opts.packageSpec ?? `${NATIVE_PACKAGES[variant]}@${NATIVE_VERSION}`}`,
  );
  try {
    const installed = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'DDPM', cancellable: true },
      async (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        return installNativeBackend({
          storageDir: context.globalStorageUri.fsPath,
          variant: variant!,
          sidecarPath: vscode.Uri.joinPath(context.extensionUri, 'dist', 'sidecar.js').fsPath,
          nodePath: process.execPath,
          ...(opts.packageSpec ? { packageSpec: opts.packageSpec } : {}),
          ...(opts.env ? { env: opts.env } : {}),
          onLog: (line) => out.appendLine(line),
          onStage: (message) => {
            out.appendLine(`[${message}]`);
            progress.report({ message });
          },
          signal: ac.signal,
        });
      },
    );
    out.appendLine(
      `--- installed: ${installed.package} ${installed.version}, ${installed.device}, in ${installed.dir}`,
    );
    updateNativeContext(context);
    // The running sidecar has its backend already; a restart makes `auto` pick the new one.
    const restart = !isTraining();
    if (restart) await sidecar.stop();
    void vscode.window.showInformationMessage(
      `DDPM: ${installed.package} is installed (${installed.device}). ` +
        (restart
          ? 'The sidecar uses it from the next command on.'
          : 'It takes over when the sidecar next starts (a training job is running now).'),
    );
    return { ok: true, device: installed.device };
  } catch (e) {
    const kind = e instanceof NativeInstallError ? e.kind : 'error';
    if (e instanceof NativeInstallError && e.detail) out.appendLine(e.detail);
    out.appendLine(`--- failed (${kind}): ${errorMessage(e)}`);
    if (kind !== 'cancelled') {
      void vscode.window.showErrorMessage(`DDPM: ${errorMessage(e)}`, 'Open Log').then((a) => a && out.show());
    }
    return { ok: false, error: errorMessage(e), kind };
  }
}

export async function runRemoveNativeBackend(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  isTraining: () => boolean,
): Promise<boolean> {
  const current = installedNativeBackend(context.globalStorageUri.fsPath);
  if (!current) {
    void vscode.window.showInformationMessage('DDPM: no native backend is installed.');
    return false;
  }
  if (isTraining()) {
    void vscode.window.showWarningMessage('DDPM: a training job is running on the native backend. Stop it first.');
    return false;
  }
  // The sidecar may have libtensorflow loaded from that folder: stop it before deleting.
  await sidecar.stop();
  removeNativeBackend(context.globalStorageUri.fsPath);
  updateNativeContext(context);
  void vscode.window.showInformationMessage(
    `DDPM: ${current.package} was removed. The sidecar falls back to WebGPU or WebAssembly.`,
  );
  return true;
}
