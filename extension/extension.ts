/**
 * DDPM Studio: activation registers commands, panels' revivers and the status bar, and reconnects to the sidecar's job
 * process if one runs (a training job outlives the window); otherwise the sidecar starts lazily.
 */
import os from 'node:os';
import * as vscode from 'vscode';
import { InfoRequest } from '../sidecar/protocol.ts';
import { SidecarClient } from './sidecarClient.ts';
import { checkTestOnly, checkWritePath, checkWritePaths, type ArgPolicy } from './commandArgs.ts';
import { restoreTrajectoryPanel, runSampleCommand, type SampleOptions } from './commands/sample.ts';
import { Training, type TrainOptions } from './commands/train.ts';
import { TRAJECTORY_VIEW } from './panels/trajectoryPanel.ts';
import { TRAINING_VIEW } from './panels/trainingPanel.ts';
import { InterpolatePanel, INTERPOLATE_VIEW } from './panels/interpolatePanel.ts';
import { CheckpointEditorProvider } from './checkpointEditor.ts';
import { runInterpolateCommand, type InterpolateOptions } from './commands/interpolate.ts';
import { registerEditing } from './commands/edit.ts';
import {
  nativeContext,
  runInstallNativeBackend,
  runRemoveNativeBackend,
  updateNativeContext,
  type InstallCommandOptions,
} from './commands/nativeBackend.ts';
import { BackendInfoDocument, runShowBackendInfo } from './commands/backendInfo.ts';
import { runDownloadPretrained, runImportDiffusers, type DownloadCommandOptions } from './commands/downloadModel.ts';
import { recentJobLines } from './jobLog.ts';
import { runOpenCheckpoint } from './commands/openCheckpoint.ts';

let sidecar: SidecarClient | null = null;
let trainingJobs: Training | null = null;

export function activate(context: vscode.ExtensionContext) {
  const log = vscode.window.createOutputChannel('DDPM', { log: true });
  sidecar = new SidecarClient(context, log);
  const sc = sidecar;
  const training = new Training(context, sc);
  trainingJobs = training;
  const backendInfo = new BackendInfoDocument();
  // The palette's install/remove entries follow this machine and the install on disk.
  updateNativeContext(context);
  // Command arguments from code may write only into the workspace or our storage; test-only options only in tests.
  const testHooks = context.extensionMode === vscode.ExtensionMode.Test || process.env.DDPM_STUDIO_TEST_HOOKS === '1';
  const argPolicy: ArgPolicy = {
    testHooks,
    writableRoots: () => [
      ...(vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
      context.globalStorageUri.fsPath,
      // The end-to-end tests write their results to a temporary folder of the run.
      ...(testHooks ? [os.tmpdir()] : []),
    ],
  };
  context.subscriptions.push(
    log,
    sc,
    training,
    vscode.commands.registerCommand('ddpm.sample', (opts?: SampleOptions) =>
      runSampleCommand(
        context,
        sc,
        isOptions(opts) ? checkWritePaths('ddpm.sample', opts!, ['saveTo'], argPolicy) : undefined,
      ),
    ),
    vscode.commands.registerCommand('ddpm.train', (opts?: TrainOptions) =>
      training.start(isOptions(opts) ? checkWritePaths('ddpm.train', opts!, ['out'], argPolicy) : undefined),
    ),
    vscode.commands.registerCommand('ddpm.trainOnFolder', (folder?: vscode.Uri) => training.start(undefined, folder)),
    vscode.commands.registerCommand('ddpm.stop', () => training.stop()),
    vscode.commands.registerCommand(
      'ddpm.interpolate',
      (clicked?: vscode.Uri | InterpolateOptions, selected?: vscode.Uri[]) =>
        clicked instanceof vscode.Uri || clicked === undefined
          ? runInterpolateCommand(context, sc, clicked, selected)
          : runInterpolateCommand(
              context,
              sc,
              undefined,
              undefined,
              checkWritePaths('ddpm.interpolate', clicked, ['saveTo'], argPolicy),
            ),
    ),
    vscode.commands.registerCommand('ddpm.resumeTraining', (target?: vscode.Uri | { out: string; steps?: number }) =>
      training.resume(
        isOptions(target)
          ? checkWritePaths('ddpm.resumeTraining', target as { out: string }, ['out'], argPolicy)
          : target,
      ),
    ),
    vscode.commands.registerCommand('ddpm.showTraining', () => training.reveal()),
    vscode.commands.registerCommand('ddpm.showLog', () => log.show()),
    vscode.commands.registerCommand('ddpm.openCheckpoint', (target?: vscode.Uri) =>
      runOpenCheckpoint(context, sc, target),
    ),
    vscode.commands.registerCommand('ddpm.downloadPretrained', (opts?: DownloadCommandOptions) =>
      runDownloadPretrained(context, sc, isOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('ddpm.importDiffusers', (source?: vscode.Uri, out?: string) =>
      runImportDiffusers(
        context,
        sc,
        source instanceof vscode.Uri ? source : undefined,
        typeof out === 'string' ? (checkWritePath('ddpm.importDiffusers', 'out', out, argPolicy), out) : undefined,
      ),
    ),
    vscode.commands.registerCommand('ddpm.info', async () => {
      const info = await sc.request(InfoRequest, {});
      log.info(`sidecar ${info.version}: backend ${info.backend.name} (${info.backend.device})`);
      return info;
    }),
    vscode.commands.registerCommand('ddpm._sidecarPid', () => sc.pid()),
    backendInfo,
    vscode.commands.registerCommand('ddpm.showBackendInfo', () => runShowBackendInfo(context, sc, backendInfo)),
    vscode.commands.registerCommand('ddpm._contextKeys', () => nativeContext()),
    vscode.commands.registerCommand('ddpm._jobLog', () => recentJobLines()),
    vscode.commands.registerCommand('ddpm.installNativeCpuBackend', () =>
      runInstallNativeBackend(context, sc, () => training.running, { variants: ['cpu'] }),
    ),
    vscode.commands.registerCommand('ddpm.installCudaBackend', (opts?: InstallCommandOptions) =>
      runInstallNativeBackend(
        context,
        sc,
        () => training.running,
        isOptions(opts)
          ? checkTestOnly('ddpm.installCudaBackend', opts!, ['packageSpec', 'env'], argPolicy)
          : undefined,
      ),
    ),
    vscode.commands.registerCommand('ddpm.removeNativeBackend', () =>
      runRemoveNativeBackend(context, sc, () => training.running),
    ),
    CheckpointEditorProvider.register(context, sc),
    // DDPM: Inpaint Image… and DDPM: Image to Image…, and their view's serializer.
    ...registerEditing(context, sc, argPolicy),
    // After a reload, panels come back with their last state (kept by the webview itself).
    // A restored Trajectory view samples again with its run's settings (kept in its webview state).
    vscode.window.registerWebviewPanelSerializer(TRAJECTORY_VIEW, {
      deserializeWebviewPanel: async (panel, state: unknown) =>
        void restoreTrajectoryPanel(context, sc, panel, state).catch((e: unknown) =>
          log.warn(`restoring a Trajectory view: ${e}`),
        ),
    }),
    // A restored Training view re-attaches to its run (live, or as it ended): its webview state names the run folder.
    vscode.window.registerWebviewPanelSerializer(TRAINING_VIEW, {
      // VS Code shows the panel once this resolves: the run is looked up after, not before (the view waits for it).
      deserializeWebviewPanel: async (panel, state: unknown) =>
        void training.restore(panel, state).catch((e: unknown) => log.warn(`restoring a Training view: ${e}`)),
    }),
    vscode.window.registerWebviewPanelSerializer(INTERPOLATE_VIEW, {
      deserializeWebviewPanel: async (panel) => void new InterpolatePanel(context.extensionUri, panel.title, panel),
    }),
  );
  // A training job that outlived the previous window (a reload, a restart): take it up again.
  void training.reattach().catch((e: unknown) => log.warn(`re-attaching to training: ${(e as Error).message}`));
  log.info(
    `DDPM Studio activated (extension host: node ${process.version}, ${vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop'} UI)`,
  );
}

/** Commands get a Uri (explorer) or nothing (palette) — options objects come only from code and tests. */
function isOptions(x: unknown): boolean {
  return typeof x === 'object' && x !== null && !(x instanceof vscode.Uri) && !Array.isArray(x);
}

export async function deactivate(): Promise<void> {
  // The job process goes on training after the window (unless ddpm.train.onWindowClose says stop); we disconnect.
  await trainingJobs?.onWindowClose();
  trainingJobs = null;
  await sidecar?.stop();
  sidecar = null;
}
