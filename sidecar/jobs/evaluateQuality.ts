/**
 * The sample-quality part of ddpm/evaluate (jobs/evaluate.ts): n images sampled from the checkpoint with ddpm/sample's
 * defaults (DDIM, 50 steps or T if fewer, η = 0; a conditional model every class in turn with its default guidance), judged by the
 * classifier shipped for the checkpoint's data (sidecar/quality/): mean confidence, class histogram, coverage and the
 * Fréchet distance to the held-out images' features.
 */
import fs from 'node:fs';
import { SampleParamsSchema, type QualityResult } from '../protocol.ts';
import { disposeClassifier, loadClassifier } from '../quality/classifier.ts';
import { classifierForSource, sampleQuality } from '../quality/sampleQuality.ts';
import { BadInputError } from './errors.ts';
import { sampleImages } from './sample.ts';
import { classLabels } from './sampleCheckpoint.ts';
import type { LoadedWeights } from './weights.ts';

export interface QualityJobOptions {
  n: number;
  seed: number;
  workers: number | 'auto';
  /** The data named in the request: the classifier's choice when the checkpoint does not name its own. */
  data: string;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Sampler steps done of total. */
  onProgress?: (p: { stage: 'quality'; done: number; total: number }) => void;
}

/**
 * The classifier file for the checkpoint's data (the request's data when the checkpoint names none); refuses data
 * without a shipped classifier and n < 2 (a covariance needs two samples). Called before any work is done.
 */
export function qualityClassifierFile(w: LoadedWeights, o: Pick<QualityJobOptions, 'n' | 'data'>): string {
  const source = w.meta.data?.source ?? o.data;
  let file: string;
  try {
    file = classifierForSource(source).file;
  } catch (e) {
    throw new BadInputError(`quality: ${(e as Error).message}`);
  }
  if (!fs.existsSync(file))
    throw new BadInputError(`quality: the classifier ${file} is missing from this installation`);
  if (o.n < 2) throw new BadInputError('quality: the Fréchet distance needs at least 2 images (n ≥ 2)');
  return file;
}

export async function evaluateQuality(w: LoadedWeights, o: QualityJobOptions): Promise<QualityResult> {
  const t0 = Date.now();
  const file = qualityClassifierFile(w, o);
  const c = w.meta.model;
  const defaults = SampleParamsSchema.parse({ checkpoint: w.meta.preset ?? 'checkpoint' });
  // A model of fewer than 50 timesteps (the tests' tiny ones) samples with one DDIM step per timestep.
  const steps = Math.min(defaults.steps, w.meta.schedule.T);
  const labels = classLabels(c.numClasses ?? 0, 'each', o.n);
  const clf = loadClassifier(file);
  try {
    const r = await sampleImages(w.params, c, w.meta.schedule, {
      n: o.n,
      sampler: 'ddim',
      steps,
      spacing: defaults.spacing,
      eta: defaults.eta,
      seed: o.seed,
      ...(labels ? { labels, guidance: defaults.guidance } : {}),
      workers: o.workers,
      onWarning: o.onWarning,
      signal: o.signal,
      onStep: (s) => o.onProgress?.({ stage: 'quality', done: s.index + 1, total: s.total }),
    });
    const report = await sampleQuality(r.images, r.shape, clf, labels);
    return {
      ...report,
      sampling: {
        sampler: 'ddim',
        steps,
        eta: defaults.eta,
        seed: o.seed,
        ...(labels ? { classes: 'each' as const, guidance: defaults.guidance } : {}),
      },
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    disposeClassifier(clf);
  }
}
