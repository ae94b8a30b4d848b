/**
 * What a DDPM Studio checkpoint holds, in one safetensors file:
 *   model.<param>    the trained weights             (names: see sidecar/ddpm/unet.ts)
 *   ema.<param>      their exponential moving average (what sampling uses by default)
 *   adam.m.<param>, adam.v.<param>   Adam's moments   (training checkpoints only; needed for exact resume)
 * and in `__metadata__`: `format` = "ddpm-studio/1" and `ddpm` = JSON of CheckpointMeta (model config, schedule,
 * step, seed and RNG state, data source, backend, training config, loss history).
 * Files are written atomically: a temporary file in the same folder, fsync, rename, fsync of the folder, so a crash
 * or a cancel mid-save leaves the previous checkpoint intact.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RngState } from '../ddpm/rng.ts';
import type { ScheduleConfig } from '../ddpm/schedule.ts';
import type { TrainConfig } from '../ddpm/train.ts';
import { validateConfig, type UNetConfig } from '../ddpm/unet.ts';
import { LimitError, LIMITS } from '../limits.ts';
import {
  encodeSafetensors,
  readHeader,
  readTensorF32,
  SafetensorsError,
  type SafetensorsHeader,
  type TensorToWrite,
} from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'ddpm-studio/1';

export interface LossHistory {
  steps: number[];
  loss: number[];
}

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  kind: 'training' | 'weights';
  model: UNetConfig;
  preset?: string;
  schedule: Required<ScheduleConfig>;
  step: number;
  seed: number;
  /** Trainer RNG state after `step` steps. */
  rng?: RngState;
  data?: { source: string; size: number };
  batch?: number;
  train?: TrainConfig;
  backend?: string;
  created: string;
  lossHistory?: LossHistory;
  /** A class-conditional model's class names, in label order (model.numClasses of them). */
  classes?: string[];
  /** For weights-only files made by `ddpm export`: the step and which weights (EMA or raw) they hold. */
  exportedFrom?: { step: number; weights: 'ema' | 'model' };
  /**
   * How the model was trained to be sampled, where not our default (σ² = β_t, x̂0 clipped): imported models carry
   * their scheduler's variance_type and clip_sample.
   */
  sampling?: { varianceType: 'fixedlarge' | 'fixedsmall'; clip: boolean };
  /** For models imported from another format (`ddpm import`): where from, and what the import noted. */
  imported?: ImportProvenance;
}

export interface ImportProvenance {
  format: 'diffusers';
  /** The folder or file imported, and the Hub repository it came from when known. */
  path: string;
  repo?: string;
  /** The diffusers version that wrote its config, its stored dtypes and attention key naming. */
  diffusersVersion?: string;
  dtypes: string[];
  attentionNaming: string;
  /** SHA-256 of the weights file imported. */
  sha256: string;
  notes: string[];
  at: string;
}

export type TensorGroup = 'model' | 'ema' | 'adam.m' | 'adam.v';

export interface CheckpointContents {
  meta: CheckpointMeta;
  /** Per group, parameter name → float32 values (shapes come from the model config). */
  groups: Partial<Record<TensorGroup, Map<string, { shape: number[]; data: Float32Array }>>>;
}

/** Keeps at most `max` points by averaging neighbours, so a long run's history stays small in the header. */
export function downsampleHistory(h: LossHistory, max = 1000): LossHistory {
  let steps = h.steps;
  let loss = h.loss;
  while (steps.length > max) {
    const s: number[] = [];
    const l: number[] = [];
    for (let i = 0; i < steps.length; i += 2) {
      const j = Math.min(i + 1, steps.length - 1);
      s.push(steps[j]);
      l.push((loss[i] + loss[j]) / 2);
    }
    steps = s;
    loss = l;
  }
  return { steps, loss };
}

/**
 * The temporary file of an atomic write: `.NAME.PID.RANDOM.tmp` beside the target. The writer's process id is in the
 * name so that leftovers of a writer that died can be told from another live writer's file (TEMP_FILE's group 1).
 */
export const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** A full disk (or quota) named as such, with what was kept; other errors as they are. */
function diskFull(e: unknown, file: string, bytes: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
  return new Error(
    `no space left on the disk to write ${file} (${(bytes / 2 ** 20).toFixed(1)} MB${code === 'EDQUOT' ? ', disk quota reached' : ''}): ` +
      `nothing was replaced${fs.existsSync(file) ? `, the previous ${path.basename(file)} is intact` : ''}. Free some space and try again.`,
    { cause: e },
  );
}

/** Writes `chunks` to `file` atomically (same-folder temp file, fsync, rename, fsync folder). */
export function writeFileAtomic(file: string, chunks: readonly Buffer[]): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const bytes = chunks.reduce((a, c) => a + c.length, 0);
  let fd: number;
  try {
    // 'wx': never open (and truncate) a file that is already there.
    fd = fs.openSync(tmp, 'wx');
  } catch (e) {
    throw diskFull(e, file, bytes);
  }
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += fs.writeSync(fd, c, off, c.length - off);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw diskFull(e, file, bytes);
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // Some platforms (Windows) cannot fsync a folder; the rename itself is still atomic.
  }
}

export function saveCheckpoint(file: string, contents: CheckpointContents, dtype: 'F32' | 'F16' = 'F32'): void {
  const tensors: TensorToWrite[] = [];
  for (const group of ['model', 'ema', 'adam.m', 'adam.v'] as const) {
    const g = contents.groups[group];
    if (!g) continue;
    for (const [name, t] of g) tensors.push({ name: `${group}.${name}`, shape: t.shape, data: t.data, dtype });
  }
  const meta = {
    ...contents.meta,
    lossHistory: contents.meta.lossHistory && downsampleHistory(contents.meta.lossHistory),
  };
  writeFileAtomic(file, encodeSafetensors(tensors, { format: CHECKPOINT_FORMAT, ddpm: JSON.stringify(meta) }));
}

/**
 * The metadata's values that size allocations or loops (T, the model's dimensions, the loss history), checked against
 * LIMITS before anything is built from them, and its types: a downloaded checkpoint is untrusted input. Returns the
 * first problem, naming the value and the limit, or null.
 */
function metaProblem(meta: CheckpointMeta): string | null {
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return 'it is not a JSON object';
  if (meta.kind !== 'training' && meta.kind !== 'weights') return `its kind ${JSON.stringify(meta.kind)} is unknown`;
  const m = meta.model as Partial<UNetConfig> | undefined;
  if (!m || typeof m !== 'object') return 'it has no model config';
  const bounded: [keyof typeof LIMITS, unknown, string][] = [
    ['imageSize', m.imageSize, 'model.imageSize'],
    ['ch', m.ch, 'model.ch'],
    ['numResBlocks', m.numResBlocks, 'model.numResBlocks'],
    ['groups', m.groups, 'model.groups'],
    ['levels', Array.isArray(m.chMult) ? m.chMult.length : 0, 'the number of levels (model.chMult)'],
    ['numClasses', m.numClasses ?? 0, 'model.numClasses'],
    ...(Array.isArray(m.chMult)
      ? m.chMult.map((v, i) => ['chMult', v, `model.chMult[${i}]`] as [keyof typeof LIMITS, unknown, string])
      : []),
    ...(Array.isArray(m.attnResolutions)
      ? m.attnResolutions.map(
          (v, i) => ['imageSize', v, `model.attnResolutions[${i}]`] as [keyof typeof LIMITS, unknown, string],
        )
      : []),
  ];
  for (const [limit, v, what] of bounded) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return `${what} is not a number`;
    if (v > LIMITS[limit]) return new LimitError(what, v, LIMITS[limit]).message;
  }
  if (!Array.isArray(m.attnResolutions)) return 'model.attnResolutions is not a list';
  const s = meta.schedule as Partial<CheckpointMeta['schedule']> | undefined;
  if (!s || typeof s !== 'object') return 'it has no schedule';
  if (s.kind !== 'linear' && s.kind !== 'cosine') return `schedule.kind ${JSON.stringify(s.kind)} is unknown`;
  if (!Number.isInteger(s.T) || (s.T as number) < 1)
    return `schedule.T must be a positive integer, got ${JSON.stringify(s.T)}`;
  if ((s.T as number) > LIMITS.T) return new LimitError('schedule.T', s.T as number, LIMITS.T).message;
  for (const k of ['betaStart', 'betaEnd', 'cosineS', 'maxBeta'] as const)
    if (s[k] !== undefined && (typeof s[k] !== 'number' || !Number.isFinite(s[k])))
      return `schedule.${k} is not a number`;
  if (!Number.isSafeInteger(meta.step) || meta.step < 0)
    return `step must be an integer ≥ 0, got ${JSON.stringify(meta.step)}`;
  if (meta.seed !== undefined && !Number.isSafeInteger(meta.seed)) return `seed is not an integer`;
  for (const k of ['preset', 'backend', 'created'] as const)
    if (meta[k] !== undefined && typeof meta[k] !== 'string') return `${k} is not a string`;
  if (meta.data !== undefined && (typeof meta.data?.source !== 'string' || typeof meta.data.size !== 'number'))
    return 'data must be {source, size}';
  const h = meta.lossHistory;
  if (h !== undefined && h !== null) {
    if (typeof h !== 'object' || !Array.isArray(h.steps) || !Array.isArray(h.loss))
      return 'lossHistory must be {steps: number[], loss: number[]}';
    if (h.steps.length !== h.loss.length) return `lossHistory has ${h.steps.length} steps but ${h.loss.length} losses`;
    if (h.steps.length > LIMITS.historyPoints)
      return new LimitError('the loss history length', h.steps.length, LIMITS.historyPoints).message;
    if (h.steps.some((v) => typeof v !== 'number') || h.loss.some((v) => typeof v !== 'number' && v !== null))
      return 'lossHistory holds values that are not numbers';
  }
  return null;
}

/** Our metadata, or null for a foreign safetensors file (e.g. one written by PyTorch). Throws on a corrupt file. */
export function readCheckpointMeta(header: SafetensorsHeader): CheckpointMeta | null {
  if (header.metadata.format !== CHECKPOINT_FORMAT || header.metadata.ddpm === undefined) return null;
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(header.metadata.ddpm) as CheckpointMeta;
  } catch (e) {
    throw new SafetensorsError(header.file, `its DDPM Studio metadata is not JSON (${(e as Error).message})`);
  }
  const problem = metaProblem(meta);
  if (problem) throw new SafetensorsError(header.file, `its DDPM Studio metadata is invalid: ${problem}`);
  try {
    validateConfig(meta.model);
  } catch (e) {
    throw new SafetensorsError(header.file, `its model config is invalid (${(e as Error).message})`);
  }
  const n = meta.model.numClasses ?? 0;
  if (
    meta.classes !== undefined &&
    (!Array.isArray(meta.classes) || meta.classes.length !== n || meta.classes.some((c) => typeof c !== 'string'))
  )
    throw new SafetensorsError(header.file, `its class names do not match its ${n} classes`);
  return meta;
}

/** Loads a DDPM Studio checkpoint: metadata and the requested tensor groups. */
export function loadCheckpoint(
  file: string,
  groups: readonly TensorGroup[] = ['model', 'ema', 'adam.m', 'adam.v'],
): CheckpointContents & { header: SafetensorsHeader } {
  const header = readHeader(file);
  const meta = readCheckpointMeta(header);
  if (!meta) {
    throw new Error(
      `${file} is a safetensors file but not a DDPM Studio checkpoint (no '${CHECKPOINT_FORMAT}' metadata): it can be inspected, not sampled from`,
    );
  }
  const out: CheckpointContents['groups'] = {};
  for (const g of groups) {
    const prefix = `${g}.`;
    const entries = header.tensors.filter((t) => t.name.startsWith(prefix));
    if (entries.length === 0) continue;
    const m = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const e of entries) m.set(e.name.slice(prefix.length), { shape: e.shape, data: readTensorF32(header, e) });
    out[g] = m;
  }
  return { header, meta, groups: out };
}
