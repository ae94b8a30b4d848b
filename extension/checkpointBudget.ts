/**
 * How much disk a training run's checkpoints take, said before it starts. A training checkpoint holds four float32
 * copies of the parameters (the weights, their EMA, Adam's first and second moments: sidecar/jobs/train.ts), so one
 * is 16 bytes per parameter; the run folder holds `latest.safetensors` and up to `keep` ckpt-<step> files. A CIFAR-10
 * run (35.7M parameters) stopped after 7 steps leaves 2 × 571 MB. No `vscode` here.
 */
import { formatBytes } from './workspaceCandidates.ts';

/** Above this, DDPM: Train asks before starting. */
export const CONFIRM_BYTES = 500e6;

/** float32 × (weights, EMA, Adam m, Adam v), plus the header (metadata and the loss history, well under a MB). */
export function checkpointBytes(params: number): number {
  return params * 4 * 4 + 64 * 1024;
}

/** Checkpoints saved by a run of `steps` (every `saveEvery` before the end, and one at the end; 0: only the end). */
export function checkpointsSaved(steps: number, saveEvery: number): number {
  return (saveEvery > 0 ? Math.floor((steps - 1) / saveEvery) : 0) + 1;
}

export interface CheckpointBudget {
  /** One checkpoint. */
  each: number;
  /** Files the run folder holds at most: latest + the ckpt-* files kept. */
  files: number;
  total: number;
  confirm: boolean;
  /** "4 checkpoints × 17 MB = 68 MB (latest + 3 kept)". */
  text: string;
}

export function checkpointBudget(params: number, keep: number, steps: number, saveEvery: number): CheckpointBudget {
  const each = checkpointBytes(params);
  const kept = Math.min(keep, checkpointsSaved(steps, saveEvery));
  const files = kept + 1;
  const total = files * each;
  return {
    each,
    files,
    total,
    confirm: total > CONFIRM_BYTES,
    text: `${files} checkpoints × ${formatBytes(each)} = ${formatBytes(total)} (latest + ${kept} kept)`,
  };
}
