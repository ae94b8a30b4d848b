/**
 * Sampling from a model as a job: the final images, and optionally a trajectory (x_t and x̂_0 at evenly spaced steps,
 * as in the paper's Fig. 6), all as host arrays in [−1, 1]. Shared by the CLI and the sidecar.
 */
import * as tf from '@tensorflow/tfjs';
import { GaussianDiffusion } from '../ddpm/diffusion.ts';
import { runSampler, type SamplerKind, type StepInfo } from '../ddpm/sampler.ts';
import { makeSchedule, type ScheduleConfig } from '../ddpm/schedule.ts';
import { unetForward, type UNetConfig } from '../ddpm/unet.ts';

export interface SampleJobOptions {
  n: number;
  sampler: SamplerKind;
  /** DDIM steps (ignored by DDPM, which uses all T). */
  steps?: number;
  eta?: number;
  seed: number;
  /** Number of trajectory frames to record (0 = none). */
  frames?: number;
  signal?: AbortSignal;
  onStep?: (info: Omit<StepInfo, 'xt' | 'predX0'>) => void;
  /** Called for each recorded frame, in order. */
  onFrame?: (frame: TrajectoryFrame) => void | Promise<void>;
}

export interface TrajectoryFrame {
  index: number;
  t: number;
  xt: Float32Array;
  predX0: Float32Array;
}

export interface SampleJobResult {
  images: Float32Array;
  shape: [number, number, number, number];
  frames: TrajectoryFrame[];
}

/** Which of `total` steps to record so that `frames` of them are evenly spaced and the last step is included. */
export function frameIndices(total: number, frames: number): Set<number> {
  if (frames <= 0) return new Set();
  if (frames === 1) return new Set([total - 1]);
  return new Set(Array.from({ length: Math.min(frames, total) }, (_, i) => Math.round((i * (total - 1)) / (Math.min(frames, total) - 1))));
}

export async function sampleImages(params: ReadonlyMap<string, tf.Tensor>, config: UNetConfig, schedule: Partial<ScheduleConfig>, o: SampleJobOptions): Promise<SampleJobResult> {
  if (!Number.isInteger(o.n) || o.n < 1) throw new Error(`n must be a positive integer, got ${o.n}`);
  const diffusion = new GaussianDiffusion(makeSchedule(schedule));
  const shape: [number, number, number, number] = [o.n, config.imageSize, config.imageSize, config.channels];
  const frames: TrajectoryFrame[] = [];
  let wanted: Set<number> | null = null;
  const x0 = await runSampler((x, t) => unetForward(params, config, x, t, { training: false }), diffusion, shape, {
    sampler: o.sampler,
    steps: o.steps,
    eta: o.eta,
    seed: o.seed,
    signal: o.signal,
    wantTensors: (i, total) => (wanted ??= frameIndices(total, o.frames ?? 0)).has(i),
    onStep: async (info) => {
      o.onStep?.({ index: info.index, total: info.total, t: info.t, tPrev: info.tPrev });
      if (info.xt && info.predX0) {
        const [xt, p] = await Promise.all([info.xt.data(), info.predX0.data()]);
        const frame = { index: info.index, t: info.t, xt: xt as Float32Array, predX0: p as Float32Array };
        frames.push(frame);
        await o.onFrame?.(frame);
      }
    },
  });
  const images = (await x0.data()) as Float32Array;
  x0.dispose();
  return { images, shape, frames };
}

/** Rearranges frames into one image per (sample, frame), row-major by sample: the layout of a trajectory strip. */
export function trajectoryBatch(frames: readonly TrajectoryFrame[], shape: readonly number[], pick: 'xt' | 'predX0'): Float32Array {
  const [n, h, w, c] = shape;
  const per = h * w * c;
  const out = new Float32Array(n * frames.length * per);
  for (let s = 0; s < n; s++) {
    frames.forEach((f, j) => out.set(f[pick].subarray(s * per, (s + 1) * per), (s * frames.length + j) * per));
  }
  return out;
}
