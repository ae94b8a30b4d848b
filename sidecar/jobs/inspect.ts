/**
 * Reading checkpoints without running them: the summary of a file (its header only), one tensor's statistics and
 * histogram, and how far the EMA weights are from the raw ones. Any safetensors file can be inspected; only DDPM
 * Studio checkpoints have a model card.
 */
import {
  CHECKPOINT_FORMAT,
  readCheckpointMeta,
  type CheckpointMeta,
  type LossHistory,
} from '../checkpoint/checkpoint.ts';
import { readHeader, readTensorF32 } from '../checkpoint/safetensors.ts';
import { detectDiffusers } from '../interop/diffusersFolder.ts';
import type { EmaDiffResult, InspectResult, TensorStatsResult } from '../protocol.ts';
import { NotFoundError, requireFile } from './errors.ts';

export function inspectCheckpoint(file: string): InspectResult {
  requireFile(file, 'file');
  const h = readHeader(file);
  const meta = readCheckpointMeta(h);
  // A checkpoint's parameters are its model's; a foreign file's, every value it holds.
  const params = h.tensors
    .filter((t) => !meta || t.name.startsWith('model.'))
    .reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  return {
    path: file,
    fileSize: h.fileSize,
    format: meta ? CHECKPOINT_FORMAT : null,
    ...(meta
      ? {
          kind: meta.kind,
          preset: meta.preset,
          model: { ...meta.model },
          schedule: { ...meta.schedule },
          step: meta.step,
          data: meta.data,
          backend: meta.backend,
          created: meta.created,
          ...(meta.classes ? { classes: meta.classes } : {}),
          ...(meta.imported ? { imported: importedSummary(meta.imported) } : {}),
          ...(meta.sampling ? { sampling: { ...meta.sampling } } : {}),
        }
      : {}),
    params,
    tensors: h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    lossHistory: meta?.lossHistory ?? null,
    metadata: meta ? {} : h.metadata,
    // A diffusers model's weights: whether `ddpm import` (the inspector's Import) takes it, or why not.
    ...(meta ? {} : diffusersOf(h)),
  };
}

function importedSummary(i: NonNullable<CheckpointMeta['imported']>): NonNullable<InspectResult['imported']> {
  return {
    format: i.format,
    path: i.path,
    ...(i.repo ? { repo: i.repo } : {}),
    ...(i.diffusersVersion ? { diffusersVersion: i.diffusersVersion } : {}),
    dtypes: i.dtypes,
    attentionNaming: i.attentionNaming,
    sha256: i.sha256,
  };
}

function diffusersOf(h: Parameters<typeof detectDiffusers>[0]): Pick<InspectResult, 'diffusers'> {
  const d = detectDiffusers(h);
  return d ? { diffusers: d } : {};
}

export interface LossSummary {
  points: number;
  firstStep: number;
  lastStep: number;
  /** null where the value is not a finite number (a diverged run's NaN is stored as null). */
  first: number | null;
  last: number | null;
  /** The lowest finite loss (null if none is). */
  min: number | null;
}

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * First, last and lowest loss of a history: a loop, not Math.min(...xs) (a long history overflows the call stack),
 * and any value that is not a finite number (NaN stored as null, a foreign writer's strings) counts as missing.
 */
export function lossSummary(h: LossHistory | null | undefined): LossSummary | null {
  if (!h || !Array.isArray(h.loss) || !Array.isArray(h.steps) || h.loss.length === 0) return null;
  let min: number | null = null;
  for (const l of h.loss) {
    const v = finite(l);
    if (v !== null && (min === null || v < min)) min = v;
  }
  return {
    points: h.loss.length,
    firstStep: finite(h.steps[0]) ?? 0,
    lastStep: finite(h.steps[h.steps.length - 1]) ?? 0,
    first: finite(h.loss[0]),
    last: finite(h.loss[h.loss.length - 1]),
    min,
  };
}

/** Min, max, mean, standard deviation and a histogram of `bins` equal bins over [min, max] of one tensor. */
export function tensorStats(file: string, name: string, bins: number): TensorStatsResult {
  requireFile(file, 'file');
  const h = readHeader(file);
  const entry = h.tensors.find((t) => t.name === name);
  if (!entry) throw new NotFoundError(`${file} has no tensor '${name}'`);
  const v = readTensorF32(h, entry);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of v) {
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  const mean = v.length ? sum / v.length : 0;
  let sq = 0;
  for (const x of v) sq += (x - mean) ** 2;
  const counts = new Array<number>(bins).fill(0);
  const width = max > min ? (max - min) / bins : 1;
  for (const x of v) counts[Math.min(bins - 1, Math.floor((x - min) / width))]++;
  return {
    name,
    dtype: entry.dtype,
    shape: entry.shape,
    count: v.length,
    min: v.length ? min : 0,
    max: v.length ? max : 0,
    mean,
    std: v.length ? Math.sqrt(sq / v.length) : 0,
    histogram: { edges: Array.from({ length: bins + 1 }, (_, i) => (v.length ? min + i * width : 0)), counts },
  };
}

/** ‖ema − model‖ / ‖model‖ over all parameters and the ten weight tensors that differ most; null without EMA weights. */
export function emaDiff(file: string): EmaDiffResult | null {
  requireFile(file, 'file');
  const h = readHeader(file);
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  let num = 0;
  let den = 0;
  const per: { name: string; relative: number }[] = [];
  for (const t of h.tensors) {
    if (!t.name.startsWith('model.')) continue;
    const e = byName.get(`ema.${t.name.slice(6)}`);
    if (!e) continue;
    const a = readTensorF32(h, t);
    const b = readTensorF32(h, e);
    let n = 0;
    let d = 0;
    for (let i = 0; i < a.length; i++) {
      n += (b[i] - a[i]) ** 2;
      d += a[i] ** 2;
    }
    num += n;
    den += d;
    // The ranking covers weight matrices and filters: biases and norm offsets start at 0, so their relative
    // difference is large and says nothing.
    if (t.shape.length >= 2) per.push({ name: t.name.slice(6), relative: d > 0 ? Math.sqrt(n / d) : Math.sqrt(n) });
  }
  if (per.length === 0) return null;
  per.sort((x, y) => y.relative - x.relative);
  return { relative: den > 0 ? Math.sqrt(num / den) : 0, top: per.slice(0, 10) };
}
