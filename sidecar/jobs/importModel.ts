/**
 * `ddpm import` / ddpm/import: a diffusers UNet2DModel (sidecar/interop/) becomes a DDPM Studio weights checkpoint,
 * with the schedule and sampling choices of its scheduler config and where it came from in the metadata; and
 * `ddpm export --format diffusers`: the way back.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  loadCheckpoint,
  saveCheckpoint,
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
  type ImportProvenance,
} from '../checkpoint/checkpoint.ts';
import { countParams, paramSpecs, PRESET_NAMES, PRESETS, type UNetConfig } from '../ddpm/unet.ts';
import { readDiffusersModel, writeDiffusersModel } from '../interop/diffusersFolder.ts';
import type { ImportOptions, ImportResult } from '../protocol.ts';
import { BadInputError, NotFoundError, requireFile } from './errors.ts';

/** The preset whose architecture this is (dropout aside: it only matters when training), if any. */
export function presetOf(c: UNetConfig): string | undefined {
  const key = (x: UNetConfig) =>
    JSON.stringify([x.imageSize, x.channels, x.ch, x.chMult, x.numResBlocks, x.attnResolutions, x.groups]);
  const plain = !c.numClasses && c.attnHeadDim === undefined && c.timeFreqShift === undefined && !c.timeFlipSinToCos;
  return plain ? PRESET_NAMES.find((n) => key(PRESETS[n]) === key(c)) : undefined;
}

function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 22);
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

export function importDiffusers(o: ImportOptions): ImportResult {
  if (!fs.existsSync(o.path)) throw new NotFoundError(`diffusers model not found: ${o.path}`);
  const m = readDiffusersModel(o.path);
  const notes = m.files.weights.endsWith('.safetensors')
    ? m.schedule.notes
    : [
        ...m.schedule.notes,
        `weights read from ${path.basename(m.files.weights)} (torch.save's format) by a restricted unpickler that runs nothing`,
      ];
  const preset = presetOf(m.config);
  const imported: ImportProvenance = {
    format: 'diffusers',
    path: path.resolve(o.path),
    ...(o.repo ? { repo: o.repo } : {}),
    ...(m.diffusersVersion ? { diffusersVersion: m.diffusersVersion } : {}),
    dtypes: m.dtypes,
    attentionNaming: m.attentionNaming,
    sha256: sha256File(m.files.weights),
    notes,
    at: new Date().toISOString(),
  };
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    kind: 'weights',
    model: m.config,
    ...(preset ? { preset } : {}),
    schedule: m.schedule.schedule,
    step: 0,
    seed: 0,
    created: imported.at,
    sampling: m.schedule.sampling,
    imported,
  };
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  saveCheckpoint(o.out, { meta, groups: { model: m.weights } }, o.f16 ? 'F16' : 'F32');
  return {
    out: o.out,
    bytes: fs.statSync(o.out).size,
    params: countParams(paramSpecs(m.config)),
    model: m.config,
    ...(preset ? { preset } : {}),
    schedule: m.schedule.schedule,
    sampling: m.schedule.sampling,
    dtypes: m.dtypes,
    attentionNaming: m.attentionNaming,
    notes,
  };
}

export interface DiffusersExportResult {
  out: string;
  files: string[];
  bytes: number;
  step: number;
  weights: 'ema' | 'model';
}

/** Our checkpoint's EMA (or raw) weights as a diffusers model folder (or pipeline folder) in `out`. */
export function exportDiffusers(o: {
  checkpoint: string;
  out: string;
  ema: boolean;
  f16: boolean;
  pipeline: boolean;
}): DiffusersExportResult {
  requireFile(o.checkpoint, 'checkpoint');
  if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory())
    throw new BadInputError(`${o.out} is a file: the diffusers format is a folder`);
  const ck = loadCheckpoint(o.checkpoint, ['ema', 'model']);
  const ema = o.ema ? ck.groups.ema : undefined;
  const weights = ema ?? ck.groups.model;
  if (!weights) throw new BadInputError(`${o.checkpoint} holds no model weights`);
  // What the model was trained for: an imported one's scheduler, ours (σ² = β_t as the paper's CIFAR-10 samples, x̂0
  // clipped) otherwise.
  const sampling = ck.meta.sampling ?? { varianceType: 'fixedlarge' as const, clip: true };
  const files = writeDiffusersModel(o.out, ck.meta.model, weights, ck.meta.schedule, sampling, {
    pipeline: o.pipeline,
    dtype: o.f16 ? 'F16' : 'F32',
  });
  return {
    out: o.out,
    files,
    bytes: files.reduce((n, f) => n + fs.statSync(f).size, 0),
    step: ck.meta.exportedFrom?.step ?? ck.meta.step,
    weights: ema ? 'ema' : (ck.meta.exportedFrom?.weights ?? 'model'),
  };
}
