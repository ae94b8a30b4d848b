/**
 * DDPM: Inpaint as a job: a checkpoint, an image and a mask (white = regenerate) → n inpaintings by RePaint
 * (ddpm/repaint.ts), the x_t and x̂0 grids streamed on evenly spaced reverse steps while it runs.
 */
import * as tf from '@tensorflow/tfjs';
import { repaint, repaintSchedule, reverseSteps } from '../ddpm/repaint.ts';
import type { InpaintOptions } from '../protocol.ts';
import { emitFrame, loadInput, loadMask, runEdit } from './editInputs.ts';
import { BadInputError } from './errors.ts';
import { frameIndices } from './sample.ts';
import { checkpointClasses, type CheckpointJobResult } from './sampleCheckpoint.ts';
import { disposeWeights, loadWeights } from './weights.ts';

/** What a step of an editing job reports: the index of the transition, how many, t, and whether it re-noised. */
export interface EditStep {
  index: number;
  total: number;
  t: number;
  up?: boolean;
}

/** A frame of an editing job: the x_t and x̂0 grids at one reverse step. */
export interface EditFrame {
  index: number;
  t: number;
  xt: Buffer;
  x0: Buffer;
}

/** What the caller of an editing job passes beside the request: cancellation, warnings, progress and frames. */
export interface EditJobHooks {
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  onStep?: (step: EditStep) => void;
  onFrame?: (frame: EditFrame) => void | Promise<void>;
}

export interface EditJobResult extends CheckpointJobResult {
  /** The input as the model saw it (its size and channels), and the mask as used. */
  input: Buffer;
  mask?: Buffer;
  /** Reverse steps the model ran. */
  modelSteps: number;
}

export interface InpaintJobOptions extends Omit<InpaintOptions, 'token'>, EditJobHooks {
  /** Once the inputs are read and the threads known, before the first step. */
  onStart?: (info: { threads: number; modelSteps: number; transitions: number }) => void;
}

export async function inpaintImage(o: InpaintJobOptions): Promise<EditJobResult> {
  const w = loadWeights(o.checkpoint, o.ema);
  const c = w.meta.model;
  const tensors: tf.Tensor[] = [];
  try {
    const input = await loadInput(o.image, c);
    const mask = await loadMask(o.mask, o.image, c, o.onWarning);
    if (o.steps > w.meta.schedule.T)
      throw new BadInputError(`steps must be at most the checkpoint's T = ${w.meta.schedule.T}, got ${o.steps}`);
    const classes = checkpointClasses(w.meta, o.class, o.n, o.guidance);
    const image = tf.tensor4d(input, [1, c.imageSize, c.imageSize, c.channels]);
    const m = tf.tensor4d(mask, [1, c.imageSize, c.imageSize, 1]);
    tensors.push(image, m);
    const schedule = repaintSchedule(o.steps, o.jumps, o.resample);
    const modelSteps = reverseSteps(schedule);
    const wanted = frameIndices(modelSteps, o.frames);
    return await runEdit(w, o, { input, mask }, { modelSteps, report: classes.report }, (eps, n, diffusion, grid) => {
      o.onStart?.({ threads: n, modelSteps, transitions: schedule.length - 1 });
      return repaint(eps, diffusion, image, m, o.n, {
        steps: o.steps,
        jumpLength: o.jumps,
        resample: o.resample,
        seed: o.seed,
        ...classes.conditioning,
        signal: o.signal,
        wantTensors: (i) => wanted.has(i),
        onStep: async (s) => {
          o.onStep?.({ index: s.index, total: s.total, t: s.t, ...(s.direction === 'up' ? { up: true } : {}) });
          await emitFrame(grid, s.reverse - 1, s, o.onFrame);
        },
      });
    });
  } finally {
    tf.dispose(tensors);
    disposeWeights(w);
  }
}
