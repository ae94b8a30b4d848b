/**
 * A training request as a job: the request's options become the trainer's (the recipe defaults of a new run, the
 * random-flip default of the data), and a process runs one training job at a time, which can be stopped (it saves
 * a checkpoint first). Errors before the first step (bad data, a run that cannot be resumed) fail the start; later
 * ones end the job.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { writeFileAtomic } from '../checkpoint/checkpoint.ts';
import type { TrainConfig } from '../ddpm/train.ts';
import { SampleParamsSchema, TrainRecipeSchema, type TrainOptions } from '../protocol.ts';
import { JobRunningError, NoSuchJobError } from './errors.ts';
import { runTrainJob, SHUTDOWN, type TrainEvent, type TrainJobOptions, type TrainProgress } from './train.ts';

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
  | 'resumeFrom'
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
    resumeFrom: o.resumeFrom,
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
  /** The run folder, and the request that started the job (defaults filled in). */
  out: string;
  options: TrainOptions;
  /** The compute backend it trains on. */
  backend: { name: string; device: string };
  /** The step of the checkpoint it resumed from; null for a new run. */
  resumedFrom: number | null;
}

/** How a job ended (kept by the slot for the last job, so that a client attaching later can say so). */
export interface EndedTraining {
  jobId: string;
  out: string;
  reason: 'done' | 'stopped' | 'failed';
  step: number;
  checkpoint: string | null;
  error?: string;
}

/** The run folder's record of the request that last trained in it: what Resume starts again. */
export const RUN_FILE = 'run.json';

/**
 * One training job at a time. Several clients may share the slot (the sidecar's socket mode): it keeps what a client
 * attaching later needs to know about the job, and how the last one ended.
 */
export class TrainingSlot {
  private job:
    | (RunningTraining & { controller: AbortController; done: Promise<{ step: number; checkpoint: string | null }> })
    | null = null;
  private ended: EndedTraining | null = null;

  get current(): RunningTraining | null {
    return this.job;
  }

  /** How the last job that ran in this process ended (null while none has). */
  get lastEnded(): EndedTraining | null {
    return this.ended;
  }

  /** Starts a job; resolves with it once its first step is done (or it ended at once), rejects if it could not start. */
  async start(
    o: TrainOptions,
    backend: string | { name: string; device: string },
    listener: TrainingListener = {},
  ): Promise<RunningTraining> {
    const backendInfo = typeof backend === 'string' ? { name: backend, device: backend } : backend;
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
      out: o.out,
      options: o,
      backend: backendInfo,
      resumedFrom: null,
      controller,
      done: Promise.resolve({ step: 0, checkpoint: null }),
    };
    let running = false;
    job.done = runTrainJob({
      ...trainJobOptions(o),
      backend: backendInfo.name,
      signal: controller.signal,
      onProgress: (p) => {
        if (!running) writeRunFile(o);
        running = true;
        started();
        job.step = p.step;
        listener.onProgress?.({ ...p, lastCheckpoint: job.lastCheckpoint });
      },
      onEvent: (e) => {
        if (e.type === 'checkpoint') job.lastCheckpoint = e.path;
        if (e.type === 'resumed') {
          job.step = e.step;
          job.resumedFrom = e.step;
        }
        listener.onEvent?.(e);
      },
    }).then(
      (r) => {
        this.job = null;
        started();
        this.ended = { jobId: job.id, out: o.out, reason: r.reason, step: r.step, checkpoint: r.checkpoint };
        listener.onEnded?.({ reason: r.reason, step: r.step, checkpoint: r.checkpoint });
        return { step: r.step, checkpoint: r.checkpoint };
      },
      (e: unknown) => {
        this.job = null;
        failedEarly(e);
        // A job that never started reports through the start request's error only.
        if (running) {
          const error = e instanceof Error ? e.message : String(e);
          this.ended = {
            jobId: job.id,
            out: o.out,
            reason: 'failed',
            step: job.step,
            checkpoint: job.lastCheckpoint,
            error,
          };
          listener.onEnded?.({ reason: 'failed', step: job.step, checkpoint: job.lastCheckpoint, error });
        }
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

  /** Stops whatever runs (saving a checkpoint); for a process about to exit, which skips the final preview. */
  async shutdown(): Promise<void> {
    const j = this.job;
    if (!j) return;
    j.controller.abort(SHUTDOWN);
    await j.done;
  }
}

/** Writes run.json (atomically) into the run folder: the request, so that Resume can start it again. */
function writeRunFile(o: TrainOptions): void {
  try {
    const text = JSON.stringify(
      { ...o, resume: true, resumeFrom: undefined, updated: new Date().toISOString() },
      null,
      2,
    );
    writeFileAtomic(path.join(o.out, RUN_FILE), [Buffer.from(`${text}\n`)]);
  } catch {
    // A record for later convenience: a read-only folder must not fail the run (its checkpoints would fail first).
  }
}
