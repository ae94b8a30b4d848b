/**
 * Sampling from a model as a job: the final images, and optionally a trajectory (x_t and x̂_0 at evenly spaced steps,
 * as in the paper's Fig. 6), all as host arrays in [−1, 1]. Shared by the CLI and the sidecar.
 */
import * as tf from '@tensorflow/tfjs';
import { assertBackendHealthy } from '../backend.ts';
import { GaussianDiffusion, type VarianceType } from '../ddpm/diffusion.ts';
import { runSampler, type EpsModel, type SamplerKind, type StepInfo } from '../ddpm/sampler.ts';
import { makeSchedule, type DdimSpacing, type ScheduleConfig } from '../ddpm/schedule.ts';
import type { UNetConfig } from '../ddpm/unet.ts';
import { LIMITS } from '../limits.ts';
import { BadInputError } from './errors.ts';
import { backendInferenceEps } from '../parallel/wasmMemory.ts';
import {
  backendUsesWorkers,
  ModelWorkerPool,
  resolveSamplingWorkers,
  threadedEpsModel,
  workerInit,
} from '../parallel/workerPool.ts';

/** How a sampling run spreads over threads on the CPU backends (parallel/workerPool.ts). */
export interface SamplingThreadOptions {
  /** Threads running the model: a number, or 'auto' (default: one per core for models that gain from it). */
  workers?: number | 'auto';
  /** Told when the extra threads could not start (the run then goes on one thread). */
  onWarning?: (message: string) => void;
  /**
   * A running pool for this architecture to use instead of starting one (the trainer's, for its preview samples):
   * its workers' weights are replaced by the sampled ones, and it stays running afterwards. `workers` is ignored.
   */
  pool?: ModelWorkerPool;
}

/** ε_θ (class labels passed on) that also carries the backend's health check, which the sampler runs after every step. */
function checked(eps: EpsModel): EpsModel {
  return Object.assign((x: tf.Tensor4D, t: readonly number[], labels?: readonly number[]) => eps(x, t, labels), {
    checkHealth: assertBackendHealthy,
  });
}

/**
 * Runs `fn` with ε_θ for `params`, spread over `resolveSamplingWorkers` threads for a batch of `batch` images when
 * the backend is a single-threaded CPU one (GPU and native backends use their own parallelism), in passes that fit
 * the backend's memory (parallel/wasmMemory.ts) and checked for device errors after every sampler step. Passes fn
 * the number of threads; the workers (started before fn, about a second) are stopped when fn settles.
 */
export async function withSamplingThreads<T>(
  params: ReadonlyMap<string, tf.Tensor>,
  config: UNetConfig,
  schedule: Partial<ScheduleConfig>,
  batch: number,
  o: SamplingThreadOptions,
  fn: (eps: EpsModel, threads: number) => Promise<T>,
): Promise<T> {
  const run = (eps: EpsModel, threads: number) => fn(checked(eps), threads);
  const local = backendInferenceEps(params, config);
  const pool = o.pool;
  if (pool) {
    if (!backendUsesWorkers() || batch < 2) return run(local, 1);
    await pool.setParams(params);
    return run(threadedEpsModel(pool, local), Math.min(pool.size + 1, batch));
  }
  const numParams = [...params.values()].reduce((s, p) => s + p.size, 0);
  const threads = backendUsesWorkers() ? resolveSamplingWorkers(o.workers, batch, numParams) : 1;
  if (threads <= 1) return run(local, 1);
  let workers: ModelWorkerPool | null = null;
  try {
    workers = await ModelWorkerPool.start(threads - 1, workerInit(params, config, makeSchedule(schedule).config));
    await workers.setParams(params);
  } catch (e) {
    await workers?.dispose();
    o.onWarning?.(
      `sampling on one thread: the model workers could not start (${e instanceof Error ? e.message : String(e)})`,
    );
    return run(local, 1);
  }
  try {
    return await run(threadedEpsModel(workers, local), threads);
  } finally {
    await workers.dispose();
  }
}

export interface SampleJobOptions extends SamplingThreadOptions {
  n: number;
  sampler: SamplerKind;
  /** DDIM steps (ignored by DDPM, which uses all T). */
  steps?: number;
  /** DDIM's timestep spacing (schedule.ts). */
  spacing?: DdimSpacing;
  eta?: number;
  /** DDPM's σ_t² and x̂0 clipping (the sampler's defaults: β_t, clipped); imported models bring their scheduler's. */
  varianceType?: VarianceType;
  clip?: boolean;
  seed: number;
  /** A conditional model's class per image (NULL_CLASS: none), and the classifier-free guidance scale. */
  labels?: readonly number[];
  guidance?: number;
  /** Number of trajectory frames to record (0 = none); each goes to onFrame. */
  frames?: number;
  /**
   * Also keep the frames in the result (for trajectory strips). Off by default: frames are streamed to onFrame and
   * let go, not held (n × frames images of x_t and x̂0) whether or not anyone reads them. Bounded by
   * LIMITS.keptFrameBytes.
   */
  keepFrames?: boolean;
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
  /** The recorded frames, with keepFrames (else empty). */
  frames: TrajectoryFrame[];
  /** Threads the model ran on (1 unless the backend is wasm or cpu and workers were used). */
  threads: number;
}

/** Which of `total` steps to record so that `frames` of them are evenly spaced and the last step is included. */
export function frameIndices(total: number, frames: number): Set<number> {
  if (frames <= 0) return new Set();
  if (frames === 1) return new Set([total - 1]);
  return new Set(
    Array.from({ length: Math.min(frames, total) }, (_, i) =>
      Math.round((i * (total - 1)) / (Math.min(frames, total) - 1)),
    ),
  );
}

export async function sampleImages(
  params: ReadonlyMap<string, tf.Tensor>,
  config: UNetConfig,
  schedule: Partial<ScheduleConfig>,
  o: SampleJobOptions,
): Promise<SampleJobResult> {
  if (!Number.isInteger(o.n) || o.n < 1) throw new Error(`n must be a positive integer, got ${o.n}`);
  const diffusion = new GaussianDiffusion(makeSchedule(schedule));
  const shape: [number, number, number, number] = [o.n, config.imageSize, config.imageSize, config.channels];
  const frames: TrajectoryFrame[] = [];
  if (o.keepFrames) {
    const per = config.imageSize * config.imageSize * config.channels;
    const bytes = o.n * Math.min(o.frames ?? 0, LIMITS.frames) * per * 2 * 4;
    if (bytes > LIMITS.keptFrameBytes)
      throw new BadInputError(
        `the trajectory strips would hold ${(bytes / 2 ** 20).toFixed(0)} MB of frames (${o.n} images × ${o.frames} frames), over the limit of ${LIMITS.keptFrameBytes / 2 ** 20} MB: ask for fewer images or frames`,
      );
  }
  let wanted: Set<number> | null = null;
  return withSamplingThreads(params, config, schedule, o.n, o, async (eps, threads) => {
    const x0 = await runSampler(eps, diffusion, shape, {
      sampler: o.sampler,
      steps: o.steps,
      spacing: o.spacing,
      eta: o.eta,
      ...(o.varianceType ? { varianceType: o.varianceType } : {}),
      ...(o.clip !== undefined ? { clip: o.clip } : {}),
      seed: o.seed,
      labels: o.labels,
      guidance: o.guidance,
      signal: o.signal,
      wantTensors: (i, total) => (wanted ??= frameIndices(total, o.frames ?? 0)).has(i),
      onStep: async (info) => {
        o.onStep?.({ index: info.index, total: info.total, t: info.t, tPrev: info.tPrev });
        if (info.xt && info.predX0) {
          const [xt, p] = await Promise.all([info.xt.data(), info.predX0.data()]);
          const frame = { index: info.index, t: info.t, xt: xt as Float32Array, predX0: p as Float32Array };
          if (o.keepFrames) frames.push(frame);
          await o.onFrame?.(frame);
        }
      },
    });
    const images = (await x0.data()) as Float32Array;
    x0.dispose();
    return { images, shape, frames, threads };
  });
}

/** Rearranges frames into one image per (sample, frame), row-major by sample: the layout of a trajectory strip. */
export function trajectoryBatch(
  frames: readonly TrajectoryFrame[],
  shape: readonly number[],
  pick: 'xt' | 'predX0',
): Float32Array {
  const [n, h, w, c] = shape;
  const per = h * w * c;
  const out = new Float32Array(n * frames.length * per);
  for (let s = 0; s < n; s++) {
    frames.forEach((f, j) => out.set(f[pick].subarray(s * per, (s + 1) * per), (s * frames.length + j) * per));
  }
  return out;
}
