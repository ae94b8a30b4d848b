/**
 * The inspector's "Evaluate…": what to evaluate (data, N, sample quality) asked with quick picks, and the results
 * stored beside the checkpoint (`<name>.eval.json`, webview/shared/evalResults.ts), written atomically.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { EvaluateParamsSchema } from '../sidecar/protocol.ts';
import { fieldError } from '../sidecar/validation.ts';
import { pickData } from './pickers.ts';
import {
  evalFileName,
  mergeEval,
  parseEvalFile,
  qualityAvailable,
  serializeEvalFile,
  type EvalEntry,
  type EvalFile,
} from '../webview/shared/evalResults.ts';

export function evalFilePath(checkpoint: string): string {
  return path.join(path.dirname(checkpoint), evalFileName(path.basename(checkpoint)));
}

/** Stored evaluations are a few KB; a larger file is not ours. */
const MAX_EVAL_FILE_BYTES = 16 * 1024 * 1024;

export function readEvalFile(checkpoint: string): EvalFile {
  let text: string | undefined;
  try {
    // Only a regular file of sane size: a named pipe in its place would block the extension host for ever.
    const file = evalFilePath(checkpoint);
    const st = fs.statSync(file);
    text = st.isFile() && st.size <= MAX_EVAL_FILE_BYTES ? fs.readFileSync(file, 'utf8') : undefined;
  } catch {
    text = undefined;
  }
  return parseEvalFile(text, path.basename(checkpoint));
}

/** Temporary file in the same folder, fsync, rename: the file is never half written. */
function writeAtomic(file: string, text: string): void {
  // Named like the sidecar's temporary files (pid and random part): only a dead writer's are ever cleaned up.
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`,
  );
  const fd = fs.openSync(tmp, 'wx');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Adds an evaluation to the checkpoint's file (re-read first: another window may have added one); the new file. */
export function storeEvaluation(checkpoint: string, entry: EvalEntry): EvalFile {
  const merged = mergeEval(readEvalFile(checkpoint), entry);
  writeAtomic(evalFilePath(checkpoint), serializeEvalFile(merged));
  return merged;
}

export interface EvaluationChoice {
  data: string;
  n: number;
  quality: boolean;
}

/**
 * Asks for the data (the checkpoint's own data source first when it names one, or a pick as DDPM: Train's), N and,
 * when a classifier exists for the checkpoint's data, whether to include sample quality.
 */
export async function askEvaluation(own: string | undefined): Promise<EvaluationChoice | undefined> {
  type Item = vscode.QuickPickItem & { source: string };
  const items: Item[] = [];
  if (own)
    items.push({
      label: `The checkpoint's data: ${own}`,
      description: own.startsWith('folder:') ? 'its own images (a folder has no held-out part)' : 'its held-out images',
      source: own,
    });
  if (own !== 'mnist')
    items.push({ label: 'Bundled MNIST digits', description: 'the held-out digits, 28×28', source: 'mnist' });
  items.push(
    { label: 'Folder of images…', description: 'PNG, JPEG, WebP (recursive)', source: 'folder' },
    { label: 'IDX file…', description: 'MNIST format, its t10k- file beside it', source: 'idx' },
    { label: 'CIFAR-10 folder…', description: 'test_batch.bin', source: 'cifar10' },
  );
  const pick = await vscode.window.showQuickPick(items, { title: 'DDPM: Evaluate — data' });
  if (!pick) return undefined;
  let data = pick.source;
  if (data === 'folder' || data === 'idx' || data === 'cifar10') {
    const chosen = await pickData(data, `DDPM: Evaluate — ${pick.label.replace(/…$/, '')}`);
    if (!chosen) return undefined;
    data = chosen;
  }
  const nText = await vscode.window.showInputBox({
    title: 'DDPM: Evaluate — images (N)',
    value: String(EvaluateParamsSchema.shape.n.parse(undefined)),
    prompt: 'bits/dim takes T forward passes per image (1,000 for the usual schedule)',
    validateInput: (v) => fieldError(EvaluateParamsSchema, 'n', /^\d+$/.test(v) ? Number(v) : v),
  });
  if (!nText) return undefined;
  let quality = false;
  // The classifier is the one of the checkpoint's data (evaluateQuality), else of the chosen data.
  if (qualityAvailable(own ?? data) && Number(nText) >= 2) {
    const q = await vscode.window.showQuickPick(
      [
        { label: 'Bits/dim only', quality: false },
        {
          label: 'Bits/dim and sample quality',
          description: 'N samples judged by the classifier: confidence, coverage, Fréchet distance',
          quality: true,
        },
      ],
      { title: 'DDPM: Evaluate — sample quality' },
    );
    if (!q) return undefined;
    quality = q.quality;
  }
  return { data, n: Number(nText), quality };
}
