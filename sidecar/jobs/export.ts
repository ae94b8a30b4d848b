/**
 * A weights-only copy of a checkpoint, for sampling: EMA (default) or raw weights, float32 or float16; or, with
 * format 'diffusers', a diffusers UNet2DModel folder (jobs/importModel.ts exportDiffusers).
 */
import fs from 'node:fs';
import { z } from 'zod';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.ts';
import { bool, oneOf, str } from '../validation.ts';
import { BadInputError, requireFile } from './errors.ts';

export const ExportParamsSchema = z.object({
  checkpoint: str(),
  out: str(),
  /** Store float16 (half the size; sampling computes in float32). */
  f16: bool().default(false),
  /** The EMA weights (what sampling uses) rather than the raw ones. */
  ema: bool().default(true),
  /** 'ddpm': our checkpoint format (out is a file); 'diffusers': a UNet2DModel folder (out is a folder). */
  format: oneOf(['ddpm', 'diffusers'] as const).default('ddpm'),
  /** diffusers only: a pipeline folder (model_index.json, unet/, scheduler/) for DDPMPipeline.from_pretrained. */
  pipeline: bool().default(false),
});
export type ExportOptions = z.output<typeof ExportParamsSchema>;

export interface ExportResult {
  out: string;
  bytes: number;
  step: number;
  weights: 'ema' | 'model';
}

export function exportWeights(o: ExportOptions): ExportResult {
  requireFile(o.checkpoint, 'checkpoint');
  const group = o.ema ? ('ema' as const) : ('model' as const);
  const ck = loadCheckpoint(o.checkpoint, [group]);
  const weights = ck.groups[group];
  if (!weights) throw new BadInputError(`${o.checkpoint} has no ${o.ema ? 'EMA' : 'model'} weights`);
  const meta = {
    ...ck.meta,
    kind: 'weights' as const,
    rng: undefined,
    exportedFrom: { step: ck.meta.step, weights: group },
  };
  saveCheckpoint(o.out, { meta, groups: { model: weights } }, o.f16 ? 'F16' : 'F32');
  return { out: o.out, bytes: fs.statSync(o.out).size, step: ck.meta.step, weights: group };
}
