/**
 * The extension's settings (`ddpm.*`). Their defaults are declared once, in package.json's `contributes.configuration`
 * (a test holds them to the request schemas' defaults in sidecar/protocol.ts), so reads here carry no fallback copies.
 */
import * as vscode from 'vscode';
import { z } from 'zod';
import { int, MAX_WORKERS } from '../sidecar/validation.ts';

export function setting<T>(key: string): T {
  const v = vscode.workspace.getConfiguration('ddpm').get<T>(key);
  // Only a setting missing from package.json reads as undefined: a defect of the extension, not of the user's input.
  if (v === undefined) throw new Error(`the setting ddpm.${key} is not declared`);
  return v;
}

const WorkersSetting = z.union([z.literal('auto'), z.coerce.number().pipe(int(1, MAX_WORKERS))]);

/** ddpm.train.workers, ddpm.sampleWorkers: "auto" or a thread count; anything the requests would refuse means auto. */
export function workersSetting(key: 'train.workers' | 'sampleWorkers'): number | 'auto' {
  const r = WorkersSetting.safeParse(setting<string>(key));
  return r.success ? r.data : 'auto';
}
