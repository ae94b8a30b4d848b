/**
 * DDPM: Open Checkpoint… — a checkpoint in the Checkpoint Inspector, chosen from the same list as DDPM: Sample's (the
 * shipped models, downloaded ones, recent ones, or any .safetensors file from disk). The Get Started walkthrough's
 * "Open a checkpoint" step runs it; without a Uri argument it asks, with one (a script, a test) it opens that file.
 */
import * as vscode from 'vscode';
import { CHECKPOINT_EDITOR } from '../checkpointEditor.ts';
import type { SidecarClient } from '../sidecarClient.ts';
import { describeCheckpoint, pickCheckpoint } from './common.ts';

export async function runOpenCheckpoint(
  context: vscode.ExtensionContext,
  sidecar: SidecarClient,
  target?: vscode.Uri,
): Promise<vscode.Uri | undefined> {
  let uri = target instanceof vscode.Uri ? target : undefined;
  if (!uri) {
    const file = await pickCheckpoint(context, false, 'DDPM: Open Checkpoint', describeCheckpoint(sidecar));
    if (!file) return undefined;
    uri = vscode.Uri.file(file);
  }
  await vscode.commands.executeCommand('vscode.openWith', uri, CHECKPOINT_EDITOR);
  return uri;
}
