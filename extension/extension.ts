/** DDPM Studio: activation registers commands, panels' revivers and the status bar; the sidecar starts lazily. */
import * as vscode from 'vscode';
import { InfoRequest } from '../sidecar/protocol.ts';
import { SidecarClient } from './sidecarClient.ts';
import { runDownloadPretrained, runImportDiffusers, type DownloadCommandOptions } from './commands/downloadModel.ts';
import { runSampleCommand, type SampleOptions } from './commands/sample.ts';
import { Training, type TrainOptions } from './commands/train.ts';
import { TrajectoryPanel, TRAJECTORY_VIEW } from './panels/trajectoryPanel.ts';
import { TrainingPanel, TRAINING_VIEW } from './panels/trainingPanel.ts';
import { InterpolatePanel, INTERPOLATE_VIEW } from './panels/interpolatePanel.ts';
import { CheckpointEditorProvider } from './checkpointEditor.ts';
import { runInterpolateCommand, type InterpolateOptions } from './commands/interpolate.ts';
import {
  runInstallNativeBackend,
  runRemoveNativeBackend,
  type InstallCommandOptions,
} from './commands/nativeBackend.ts';
import { runOpenCheckpoint } from './commands/openCheckpoint.ts';

let sidecar: SidecarClient | null = null;

export function activate(context: vscode.ExtensionContext) {
  const log = vscode.window.createOutputChannel('DDPM', { log: true });
  sidecar = new SidecarClient(context, log);
  const sc = sidecar;
  const training = new Training(context, sc);
  context.subscriptions.push(
    log,
    sc,
    training,
    vscode.commands.registerCommand('ddpm.sample', (opts?: SampleOptions) =>
      runSampleCommand(context, sc, isOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('ddpm.train', (opts?: TrainOptions) =>
      training.start(isOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('ddpm.trainOnFolder', (folder?: vscode.Uri) => training.start(undefined, folder)),
    vscode.commands.registerCommand('ddpm.stop', () => training.stop()),
    vscode.commands.registerCommand(
      'ddpm.interpolate',
      (clicked?: vscode.Uri | InterpolateOptions, selected?: vscode.Uri[]) =>
        clicked instanceof vscode.Uri || clicked === undefined
          ? runInterpolateCommand(context, sc, clicked, selected)
          : runInterpolateCommand(context, sc, undefined, undefined, clicked),
    ),
    vscode.commands.registerCommand('ddpm.showTraining', () => training.reveal()),
    vscode.commands.registerCommand('ddpm.showLog', () => log.show()),
    vscode.commands.registerCommand('ddpm.downloadPretrained', (opts?: DownloadCommandOptions) =>
      runDownloadPretrained(context, sc, isOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('ddpm.importDiffusers', (source?: vscode.Uri, out?: string) =>
      runImportDiffusers(
        context,
        sc,
        source instanceof vscode.Uri ? source : undefined,
        typeof out === 'string' ? out : undefined,
      ),
    ),
    vscode.commands.registerCommand('ddpm.info', async () => {
      const info = await sc.request(InfoRequest, {});
      log.info(`sidecar ${info.version}: backend ${info.backend.name} (${info.backend.device})`);
      return info;
    }),
    vscode.commands.registerCommand('ddpm.openCheckpoint', (target?: vscode.Uri) =>
      runOpenCheckpoint(context, sc, target),
    ),
    vscode.commands.registerCommand('ddpm._sidecarPid', () => sc.pid()),
    vscode.commands.registerCommand('ddpm.installCudaBackend', (opts?: InstallCommandOptions) =>
      runInstallNativeBackend(context, sc, () => training.running, isOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('ddpm.removeNativeBackend', () =>
      runRemoveNativeBackend(context, sc, () => training.running),
    ),
    CheckpointEditorProvider.register(context, sc),
    // After a reload, panels come back with their last state (kept by the webview itself).
    vscode.window.registerWebviewPanelSerializer(TRAJECTORY_VIEW, {
      deserializeWebviewPanel: async (panel) => void new TrajectoryPanel(context.extensionUri, panel.title, panel),
    }),
    vscode.window.registerWebviewPanelSerializer(TRAINING_VIEW, {
      deserializeWebviewPanel: async (panel) => void new TrainingPanel(context.extensionUri, panel.title, panel),
    }),
    vscode.window.registerWebviewPanelSerializer(INTERPOLATE_VIEW, {
      deserializeWebviewPanel: async (panel) => void new InterpolatePanel(context.extensionUri, panel.title, panel),
    }),
  );
  log.info(
    `DDPM Studio activated (extension host: node ${process.version}, ${vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop'} UI)`,
  );
}

/** Commands get a Uri (explorer) or nothing (palette) — options objects come only from code and tests. */
function isOptions(x: unknown): boolean {
  return typeof x === 'object' && x !== null && !(x instanceof vscode.Uri) && !Array.isArray(x);
}

export async function deactivate(): Promise<void> {
  await sidecar?.stop();
  sidecar = null;
}
