/**
 * A training request as a job: the request's options become the trainer's (the recipe defaults of a new run, the
 * random-flip default of the data), and a process runs one training job at a time, which can be stopped (it saves
 * a checkpoint first). Errors before the first step (bad data, a run that cannot be resumed) fail the start; later
 * ones end the job.
 */
import { randomUUID } from 'node:crypto';
import type { TrainConfig } from '../ddpm/train.ts';
import { SampleParamsSchema, TrainRecipeSchema, type TrainOptions } from '../protocol.ts';
import { JobRunningError, NoSuchJobError } from './errors.ts';
import { runTrainJob, type TrainEvent, type TrainJobOptions, type TrainProgress } from './train.ts';

/** Flipping digits or text makes wrong examples: random flips are off for the digit datasets, on otherwise. */
export function defaultFlip(data: string): boolean {
  return !(data === 'mnist' || data.startsWith('idx:'));
}

/** The trainer's options for a request: what it sets, over the recipe defaults of a new run. */
export function trainJobOptions(
  o: TrainOptions,
): Pick<
  TrainJobOptions,
  | 'data'
  | 'preset'
  | 'steps'
  | 'batch'
  | 'out'
  | 'resume'
  | 'saveEvery'
  | 'sampleEvery'
  | 'evalEvery'
  | 'keep'
  | 'seed'
  | 'workers'
  | 'train'
  | 'trainDefaults'
  | 'conditional'
  | 'previewGuidance'
> {
  const d = TrainRecipeSchema.parse({});
  const given: Partial<TrainConfig> = {
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.warmup !== undefined ? { warmupSteps: o.warmup } : {}),
    ...(o.emaDecay !== undefined ? { emaDecay: o.emaDecay } : {}),
    ...(o.microBatch !== undefined ? { microBatch: o.microBatch } : {}),
    ...(o.flip !== undefined ? { randomFlip: o.flip } : {}),
    ...(o.emaWarmup !== undefined ? { emaWarmup: o.emaWarmup } : {}),
    ...(o.classDropout !== undefined ? { classDropout: o.classDropout } : {}),
  };
  return {
    data: o.data,
    preset: o.preset,
    steps: o.steps,
    batch: o.batch,
    out: o.out,
    resume: o.resume,
    saveEvery: o.saveEvery,
    sampleEvery: o.sampleEvery,
    evalEvery: o.evalEvery,
    keep: o.keep,
    seed: o.seed,
    workers: o.workers,
    conditional: o.conditional,
    previewGuidance: SampleParamsSchema.shape.guidance.parse(undefined),
    train: given,
    trainDefaults: {
      lr: d.lr,
      warmupSteps: d.warmup,
      emaDecay: d.emaDecay,
      microBatch: d.microBatch,
      emaWarmup: d.emaWarmup,
      classDropout: d.classDropout,
      randomFlip: defaultFlip(o.data),
    },
  };
}

export interface TrainingListener {
  onProgress?: (p: TrainProgress) => void;
  onEvent?: (e: TrainEvent) => void;
  /** Once, when the job has ended after starting: done, stopped, or failed with an error. */
  onEnded?: (e: {
    reason: 'done' | 'stopped' | 'failed';
    step: number;
    checkpoint: string | null;
    error?: string;
  }) => void;
}

export interface RunningTraining {
  id: string;
  step: number;
  steps: number;
  lastCheckpoint: string | null;
}

/** One training job at a time. */
export class TrainingSlot {
  private job:
    | (RunningTraining & { controller: AbortController; done: Promise<{ step: number; checkpoint: string | null }> })
    | null = null;

  get current(): RunningTraining | null {
    return this.job;
  }

  /** Starts a job; resolves with it once its first step is done (or it ended at once), rejects if it could not start. */
  async start(o: TrainOptions, backend: string, listener: TrainingListener = {}): Promise<RunningTraining> {
    if (this.job) throw new JobRunningError(`a training job is already running (${this.job.id}); stop it first`);
    const controller = new AbortController();
    let started!: () => void;
    let failedEarly!: (e: unknown) => void;
    const startup = new Promise<void>((res, rej) => {
      started = res;
      failedEarly = rej;
    });
    const job: NonNullable<TrainingSlot['job']> = {
      id: randomUUID(),
      step: 0,
      steps: o.steps,
      lastCheckpoint: null,
      controller,
      done: Promise.resolve({ step: 0, checkpoint: null }),
    };
    let running = false;
    job.done = runTrainJob({
      ...trainJobOptions(o),
      backend,
      signal: controller.signal,
      onProgress: (p) => {
        running = true;
        started();
        job.step = p.step;
        listener.onProgress?.({ ...p, lastCheckpoint: job.lastCheckpoint });
      },
      onEvent: (e) => {
        if (e.type === 'checkpoint') job.lastCheckpoint = e.path;
        if (e.type === 'resumed') job.step = e.step;
        listener.onEvent?.(e);
      },
    }).then(
      (r) => {
        this.job = null;
        started();
        listener.onEnded?.({ reason: r.reason, step: r.step, checkpoint: r.checkpoint });
        return { step: r.step, checkpoint: r.checkpoint };
      },
      (e: unknown) => {
        this.job = null;
        failedEarly(e);
        // A job that never started reports through the start request's error only.
        if (running)
          listener.onEnded?.({
            reason: 'failed',
            step: job.step,
            checkpoint: job.lastCheckpoint,
            error: e instanceof Error ? e.message : String(e),
          });
        return { step: job.step, checkpoint: job.lastCheckpoint };
      },
    );
    this.job = job;
    await startup;
    return job;
  }

  /** Stops the job `id` and waits for its checkpoint. */
  async stop(id: string): Promise<{ step: number; checkpoint: string | null }> {
    const j = this.job;
    if (!j || j.id !== id) throw new NoSuchJobError(`no running training job ${id}`);
    j.controller.abort();
    return j.done;
  }

  /** Stops whatever runs (saving a checkpoint); for a process about to exit. */
  async shutdown(): Promise<void> {
    const j = this.job;
    if (!j) return;
    j.controller.abort();
    await j.done;
  }
}
