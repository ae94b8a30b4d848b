/**
 * The paper's Trainer (ddpm/train.ts) as this machine runs it, through its TrainerHooks: micro-batches no larger than
 * one pass may take on the backend (wasmMemory.ts), spread over worker threads on the single-threaded CPU backends
 * (workerPool.ts), dropout in a shader on WebGPU (kernels/webgpuDropout.ts), and each step checked for errors the GPU
 * reported (backend.ts). The training job and the benchmarks train with this; ddpm/train.ts alone is Algorithm 1 on
 * one thread.
 */
import * as tf from '@tensorflow/tfjs';
import { assertBackendHealthy } from '../backend.ts';
import type { GaussianDiffusion } from '../ddpm/diffusion.ts';
import type { RngState } from '../ddpm/rng.ts';
import {
  Trainer,
  type DispatchedMicroBatches,
  type MicroBatch,
  type MicroBatchExecutor,
  type StepBatch,
  type TrainConfig,
} from '../ddpm/train.ts';
import type { UNet } from '../ddpm/unet.ts';
import { backendDropout } from '../kernels/webgpuDropout.ts';
import { maxTrainingMicroBatch } from './wasmMemory.ts';
import { backendUsesWorkers, ModelWorkerPool, workerInit, type WorkerMicroBatch } from './workerPool.ts';

/**
 * A step's micro-batches on worker threads: micro-batch i runs on thread i mod n of n threads, thread 0 being the
 * trainer's own; each worker gets host copies of its images, noise and timesteps, and the weights through the pool's
 * shared buffer. The pool starts with the first step that has work for it and runs until dispose().
 */
export class WorkerMicroBatches implements MicroBatchExecutor {
  private running: ModelWorkerPool | null = null;
  private starting: Promise<ModelWorkerPool> | null = null;

  constructor(
    private readonly model: UNet,
    private readonly diffusion: GaussianDiffusion,
  ) {}

  /** The running pool (null before the first step that used it, or on one thread). */
  get pool(): ModelWorkerPool | null {
    return this.running;
  }

  /** `workers` on the CPU backends, which compute on one thread each; 1 on the others, which have their own parallelism. */
  threads(workers: number): number {
    return workers > 1 && backendUsesWorkers() ? workers : 1;
  }

  async dispatch(
    batch: StepBatch,
    microBatches: readonly MicroBatch[],
    threads: number,
  ): Promise<DispatchedMicroBatches> {
    const pool = await this.start(threads);
    const n = pool.size + 1;
    const [hostX, hostEps] = (await Promise.all([batch.x0.data(), batch.eps.data()])) as [Float32Array, Float32Array];
    await pool.setParams(this.model.params);
    const imageShape = batch.x0.shape.slice(1);
    const per = imageShape.reduce((p, q) => p * q, 1);
    // One job per worker, an empty one included: every worker answers, in worker order.
    const jobs: WorkerMicroBatch[][] = Array.from({ length: pool.size }, () => []);
    microBatches.forEach((mb, i) => {
      if (i % n === 0) return;
      jobs[(i % n) - 1].push({
        x: hostX.slice(mb.start * per, (mb.start + mb.size) * per),
        eps: hostEps.slice(mb.start * per, (mb.start + mb.size) * per),
        t: batch.t.slice(mb.start, mb.start + mb.size),
        weight: mb.weight,
        dropoutSeed: mb.dropoutSeed,
        ...(batch.labels ? { labels: batch.labels.slice(mb.start, mb.start + mb.size) } : {}),
      });
    });
    // Each worker's per-image losses come in the order of its micro-batches: placed back by their first image.
    const remote = pool.gradients(imageShape, jobs).then((replies) =>
      replies.map((r, w) => {
        let offset = 0;
        const perImage = microBatches
          .filter((_, i) => i % n !== 0 && (i % n) - 1 === w)
          .map((mb) => ({ start: mb.start, values: r.perImage.subarray(offset, (offset += mb.size)) }));
        return { loss: r.loss, grads: r.grads, perImage };
      }),
    );
    // Keep a rejection from going unhandled while the trainer computes its own share.
    remote.catch(() => undefined);
    const local = microBatches.map((_, i) => i).filter((i) => i % n === 0);
    return { local, remote, threads: Math.min(n, microBatches.length) };
  }

  private start(threads: number): Promise<ModelWorkerPool> {
    this.starting ??= ModelWorkerPool.start(
      threads - 1,
      workerInit(this.model.params, this.model.config, this.diffusion.schedule.config),
    ).then((p) => (this.running = p));
    return this.starting;
  }

  dispose(): void {
    const pool = this.running;
    this.running = null;
    this.starting = null;
    if (pool) void pool.dispose();
  }
}

/** A Trainer with this machine's hooks (see the top of this file); the same constructor as ddpm's. */
export class ParallelTrainer extends Trainer {
  private readonly workers: WorkerMicroBatches;

  constructor(model: UNet, diffusion: GaussianDiffusion, config: Partial<TrainConfig>, seedOrState: number | RngState) {
    const workers = new WorkerMicroBatches(model, diffusion);
    super(model, diffusion, config, seedOrState, {
      maxMicroBatch: () => maxTrainingMicroBatch(model.config, model.numParams, tf.getBackend()),
      executor: workers,
      dropout: backendDropout,
      checkHealth: assertBackendHealthy,
    });
    this.workers = workers;
  }

  /** The running gradient workers (null before the first step that uses them, or on one thread). */
  get workerPool(): ModelWorkerPool | null {
    return this.workers.pool;
  }
}
