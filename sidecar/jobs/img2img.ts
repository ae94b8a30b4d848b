/**
 * DDPM: Image to Image as a job: a checkpoint and a guide image → n edits by SDEdit (ddpm/sdedit.ts) at a strength
 * t₀/T, with DDIM or DDPM from t₀, the x_t and x̂0 grids streamed while it runs.
 */
import * as tf from '@tensorflow/tfjs';
import { sdedit, sdeditTimesteps } from '../ddpm/sdedit.ts';
import type { Img2ImgOptions } from '../protocol.ts';
import { emitFrame, loadInput, runEdit } from './editInputs.ts';
import { BadInputError } from './errors.ts';
import type { EditJobHooks, EditJobResult } from './inpaint.ts';
import { frameIndices } from './sample.ts';
import { checkpointClasses } from './sampleCheckpoint.ts';
import { disposeWeights, loadWeights } from './weights.ts';

export interface Img2ImgJobOptions extends Omit<Img2ImgOptions, 'token'>, EditJobHooks {
  onStart?: (info: { threads: number; modelSteps: number; t0: number }) => void;
}

export async function img2img(o: Img2ImgJobOptions): Promise<EditJobResult> {
  const w = loadWeights(o.checkpoint, o.ema);
  const c = w.meta.model;
  const T = w.meta.schedule.T;
  const tensors: tf.Tensor[] = [];
  try {
    const input = await loadInput(o.image, c);
    if (o.sampler === 'ddim' && o.steps > T)
      throw new BadInputError(`steps must be at most the checkpoint's T = ${T}, got ${o.steps}`);
    const classes = checkpointClasses(w.meta, o.class, o.n, o.guidance);
    const guide = tf.tensor4d(input, [1, c.imageSize, c.imageSize, c.channels]);
    tensors.push(guide);
    const ts = sdeditTimesteps(T, o.strength, o);
    const wanted = frameIndices(ts.length, o.frames);
    return await runEdit(
      w,
      o,
      { input },
      { modelSteps: ts.length, report: classes.report },
      (eps, n, diffusion, grid) => {
        o.onStart?.({ threads: n, modelSteps: ts.length, t0: Math.round(o.strength * T) });
        return sdedit(eps, diffusion, guide, o.n, o.strength, {
          sampler: o.sampler,
          steps: o.steps,
          spacing: o.spacing,
          eta: o.eta,
          seed: o.seed,
          ...classes.conditioning,
          signal: o.signal,
          wantTensors: (i) => wanted.has(i),
          onStep: async (s) => {
            o.onStep?.({ index: s.index, total: s.total, t: s.t });
            await emitFrame(grid, s.index, s, o.onFrame);
          },
        });
      },
    );
  } finally {
    tf.dispose(tensors);
    disposeWeights(w);
  }
}
