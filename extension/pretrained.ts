/** Where DDPM: Download Pretrained Model… keeps the models it imported: one checkpoint per Hub repository. */
import fs from 'node:fs';
import path from 'node:path';
import type * as vscode from 'vscode';
import { PRETRAINED_MODELS } from './hubDownload.ts';

export function pretrainedDir(context: vscode.ExtensionContext): string {
  return path.join(context.globalStorageUri.fsPath, 'pretrained');
}

export function pretrainedCheckpoint(context: vscode.ExtensionContext, repo: string): string {
  return path.join(pretrainedDir(context), `${repo.replace(/[^A-Za-z0-9._-]+/g, '--')}.safetensors`);
}

/** The downloaded models on disk, labelled with the paper's dataset where known. */
export function downloadedModels(context: vscode.ExtensionContext): { file: string; label: string; repo: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(pretrainedDir(context)).filter((f) => f.endsWith('.safetensors'));
  } catch {
    return [];
  }
  return names.sort().map((f) => {
    const file = path.join(pretrainedDir(context), f);
    const known = PRETRAINED_MODELS.find((m) => pretrainedCheckpoint(context, m.repo) === file);
    const repo = known?.repo ?? f.replace(/\.safetensors$/, '').replace('--', '/');
    return { file, repo, label: known ? `${known.label} (pretrained)` : repo };
  });
}
