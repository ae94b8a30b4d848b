/**
 * Data parallelism on the CPU: worker threads, each with its own tfjs (wasm) and its own copy of the model, share
 * the work of a batch with the main thread.
 *
 * - Training: each thread computes the gradients of some of a batch's micro-batches; the trainer sums them and takes
 *   one optimizer step (trainer.ts hands them out: the Trainer's MicroBatchExecutor).
 * - Sampling and interpolation: each thread runs the inference forward pass ε_θ(x_t, t) on a slice of the batch; the
 *   sampler concatenates the slices and takes the update step (threadedEpsModel).
 *
 * Why: tfjs-wasm runs one thread in Node (its threaded build needs a browser-style worker script), so the engine used
 * one core of the machine. Images in a batch are independent given the weights: every layer of the U-Net, GroupNorm
 * and attention included, works per image, and all randomness is drawn on the main thread (Trainer.trainStep, the
 * sampler), so the result is the same as computing the batch on one thread. For the forward pass it is bit for bit
 * the same (checked in the tests); gradients differ only in the order of floating-point sums.
 *
 * Cost: the weights are copied into a SharedArrayBuffer all workers read (4 MB for the mnist preset, 143 MB for
 * cifar10): once per step when training, once per run when sampling (workers reload them only when `setParams` has
 * changed them). Images, noise and results travel as host arrays; each worker returns one flat gradient vector or
 * its slice of ε.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendChoice } from '../backend.ts';
import type { EpsModel } from '../ddpm/sampler.ts';
import type { ScheduleConfig } from '../ddpm/schedule.ts';
import type { UNetConfig } from '../ddpm/unet.ts';

export interface WorkerInit {
  backend: BackendChoice;
  config: UNetConfig;
  schedule: Required<ScheduleConfig>;
  names: string[];
  shapes: number[][];
  /** SharedArrayBuffer with all parameters, flat, in `names` order. */
  params: SharedArrayBuffer;
}

export interface WorkerMicroBatch {
  x: Float32Array;
  eps: Float32Array;
  t: number[];
  weight: number;
  dropoutSeed: number;
  /** A conditional model's classes (NULL_CLASS for none). */
  labels?: number[];
}

type JobBody = {
  /** [H, W, C] */
  imageShape: number[];
} & (
  | { kind: 'gradients'; microBatches: WorkerMicroBatch[] }
  | { kind: 'forward'; x: Float32Array; t: number[]; labels?: number[] }
);

export type WorkerJob = {
  id: number;
  /** Bumped by every setParams: a worker reloads the shared weights when it differs from the last one it loaded. */
  paramsVersion: number;
} & JobBody;

export type WorkerReply =
  | { id: number; loss: number; grads: Float32Array; perImage: Float32Array }
  | { id: number; eps: Float32Array }
  | { id: number; error: string };

/** Below this many parameters a training step is too short for threads to pay for their synchronisation (tiny: slower). */
export const MIN_PARAMS_FOR_WORKERS = 500_000;

/**
 * Below this many parameters sampling stays on one thread: the tiny preset (177k parameters) runs a forward pass at
 * batch 8 slower on two threads than on one (31 vs 24 ms on 2 cores), its layers being too small to keep two cores
 * busy; the mnist preset (1.06M) gains 1.7×.
 */
export const MIN_PARAMS_FOR_SAMPLING_WORKERS = 500_000;

function checkWorkers(workers: number): number {
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw new Error(`workers must be an integer in 1..64 or 'auto', got ${String(workers)}`);
  return workers;
}

/**
 * The number of gradient threads for a training run: a number as given, or for 'auto' one per core (at most 8, at
 * most one per two images) for models of at least MIN_PARAMS_FOR_WORKERS parameters, else 1.
 */
export function resolveWorkers(
  workers: number | 'auto' | undefined,
  batch: number,
  params: number,
  cores = os.availableParallelism(),
): number {
  if (workers === undefined || workers === 'auto') {
    return params < MIN_PARAMS_FOR_WORKERS || batch < 4 ? 1 : Math.max(1, Math.min(cores, 8, Math.floor(batch / 2)));
  }
  return checkWorkers(workers);
}

/**
 * The number of threads for a sampling or interpolation run of `batch` images: a number as given (at most one per
 * image), or for 'auto' one per core (at most 8, at most one per image) for models of at least
 * MIN_PARAMS_FOR_SAMPLING_WORKERS parameters, else 1.
 */
export function resolveSamplingWorkers(
  workers: number | 'auto' | undefined,
  batch: number,
  params: number,
  cores = os.availableParallelism(),
): number {
  if (workers === undefined || workers === 'auto') {
    return params < MIN_PARAMS_FOR_SAMPLING_WORKERS ? 1 : Math.max(1, Math.min(cores, 8, batch));
  }
  return Math.min(checkWorkers(workers), Math.max(1, batch));
}

/** Whether the current backend runs worker threads at all: only the single-threaded CPU backends gain from them. */
export function backendUsesWorkers(): boolean {
  const backend = tf.getBackend();
  return backend === 'wasm' || backend === 'cpu';
}

/** What workers need to build the model of `params` (names and shapes in the map's order) on this thread's backend. */
export function workerInit(
  params: ReadonlyMap<string, tf.Tensor>,
  config: UNetConfig,
  schedule: Required<ScheduleConfig>,
): Omit<WorkerInit, 'params'> {
  const names = [...params.keys()];
  return {
    backend: tf.getBackend() as BackendChoice,
    config,
    schedule,
    names,
    shapes: names.map((n) => params.get(n)!.shape),
  };
}

function workerScript(): { file: string; eval: boolean } {
  // From the esbuild bundle (dist/*.js) the worker is dist/model-worker.js; from source (tests, npm scripts run
  // with tsx) it is the .ts file, loaded through tsx's require hook: loaders registered with --import do not reach
  // worker threads in Node 20.
  const bundled = path.join(__dirname, 'model-worker.js');
  if (__filename.endsWith('.js')) {
    if (!fs.existsSync(bundled))
      throw new Error(`the model worker script is missing: ${bundled} (rebuild with npm run build)`);
    return { file: bundled, eval: false };
  }
  const source = path.join(__dirname, 'modelWorker.ts');
  return { file: `require('tsx/cjs'); require(${JSON.stringify(source)});`, eval: true };
}

type Pending = { resolve: (reply: WorkerReply) => void; reject: (e: Error) => void };

export class ModelWorkerPool {
  private readonly shared: Float32Array;
  private nextId = 1;
  /** 0 while the shared weights are not (fully) loaded. */
  private paramsVersion = 0;
  private loads = 0;
  private readonly pending = new Map<number, Pending>();
  private dead: Error | null = null;

  private constructor(
    private readonly workers: Worker[],
    buffer: SharedArrayBuffer,
    private readonly names: readonly string[],
    private readonly shapes: readonly number[][],
  ) {
    this.shared = new Float32Array(buffer);
    for (const w of workers) {
      w.on('message', (m: WorkerReply) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if ('error' in m) p.reject(new Error(`model worker: ${m.error}`));
        else p.resolve(m);
      });
      const fail = (e: Error) => {
        this.dead ??= e;
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      };
      w.on('error', fail);
      w.on('exit', (code) => {
        if (code !== 0) fail(new Error(`a model worker exited with code ${code}`));
      });
    }
  }

  /** Starts `n` workers (each loads tfjs and builds the model: ~1 s) and waits until all are ready. */
  static async start(n: number, init: Omit<WorkerInit, 'params'>): Promise<ModelWorkerPool> {
    const total = init.shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    const buffer = new SharedArrayBuffer(total * 4);
    const script = workerScript();
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const w = new Worker(script.file, {
          eval: script.eval,
          workerData: { ...init, params: buffer } satisfies WorkerInit,
        });
        // Idle workers must not keep the process alive (their owner's dispose() terminates them).
        w.unref();
        workers.push(w);
      }
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              const onMessage = (m: { ready?: boolean; fatal?: string }) => {
                if (m.ready) {
                  w.off('message', onMessage);
                  resolve();
                } else if (m.fatal) reject(new Error(`a model worker failed to start: ${m.fatal}`));
              };
              w.on('message', onMessage);
              w.once('error', reject);
              w.once('exit', (code) => reject(new Error(`a model worker exited with code ${code} while starting`)));
            }),
        ),
      );
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new ModelWorkerPool(workers, buffer, init.names, init.shapes);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Copies the weights (looked up by the pool's parameter names) to where the workers' next jobs will read them. */
  async setParams(params: ReadonlyMap<string, tf.Tensor>): Promise<void> {
    if (params.size !== this.names.length)
      throw new Error(`expected ${this.names.length} parameters for the workers' model, got ${params.size}`);
    this.names.forEach((name, i) => {
      const p = params.get(name);
      if (!p) throw new Error(`missing parameter '${name}'`);
      if (p.shape.join() !== this.shapes[i].join())
        throw new Error(`parameter '${name}' has shape [${p.shape}] but the workers' model has [${this.shapes[i]}]`);
    });
    // Invalidated first: if a read fails halfway, no job may run on half-copied weights.
    this.paramsVersion = 0;
    let offset = 0;
    for (const name of this.names) {
      const data = (await params.get(name)!.data()) as Float32Array;
      this.shared.set(data, offset);
      offset += data.length;
    }
    this.paramsVersion = ++this.loads;
  }

  private send(worker: number, body: JobBody): Promise<WorkerReply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<WorkerReply>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.workers[worker].postMessage({ ...body, id, paramsVersion: this.paramsVersion } as WorkerJob);
    });
  }

  private checkJobs(n: number): void {
    if (this.paramsVersion === 0) throw new Error('setParams must be called before the workers get a job');
    if (n > this.workers.length) throw new Error(`${n} jobs for ${this.workers.length} workers`);
  }

  /** Hands worker i the micro-batches in jobs[i]; resolves with each worker's loss and summed gradients. */
  async gradients(
    imageShape: number[],
    jobs: WorkerMicroBatch[][],
  ): Promise<{ loss: number; grads: Float32Array; perImage: Float32Array }[]> {
    this.checkJobs(jobs.length);
    const replies = await Promise.all(
      jobs.map((microBatches, i) => this.send(i, { kind: 'gradients', imageShape, microBatches })),
    );
    return replies.map((r) => {
      if (!('grads' in r)) throw new Error('a model worker answered a gradient job with something else');
      return r;
    });
  }

  /** Hands worker i the images parts[i] (flat, [n, ...imageShape]); resolves with each part's ε_θ, flat. */
  async forward(
    imageShape: number[],
    parts: { x: Float32Array; t: number[]; labels?: number[] }[],
  ): Promise<Float32Array[]> {
    this.checkJobs(parts.length);
    const replies = await Promise.all(
      parts.map((p, i) =>
        this.send(i, { kind: 'forward', imageShape, x: p.x, t: p.t, ...(p.labels ? { labels: p.labels } : {}) }),
      ),
    );
    return replies.map((r) => {
      if (!('eps' in r)) throw new Error('a model worker answered a forward job with something else');
      return r.eps;
    });
  }

  async dispose(): Promise<void> {
    const e = new Error('the model workers were stopped');
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.dead ??= e;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * ε_θ on this thread and the pool's workers together: this thread takes the first slice of the batch and computes it
 * while the workers compute theirs; the slices are concatenated in batch order. The pool must hold the same weights
 * as `local` (setParams).
 */
export function threadedEpsModel(
  pool: ModelWorkerPool,
  local: (x: tf.Tensor4D, t: readonly number[], labels?: readonly number[]) => tf.Tensor4D,
): EpsModel {
  return async (x, t, labels) => {
    const b = x.shape[0];
    if (b < 2) return local(x, t, labels);
    const parts = Math.min(pool.size + 1, b);
    // As even as possible, with this thread's share the smallest: it also reads x back, concatenates and takes the
    // sampler's update step.
    const base = Math.floor(b / parts);
    const sizes = Array.from({ length: parts }, (_, k) => base + (k >= parts - (b % parts) ? 1 : 0));
    const imageShape = x.shape.slice(1);
    const per = imageShape.reduce((p, q) => p * q, 1);
    const host = (await x.data()) as Float32Array;
    const jobs: { x: Float32Array; t: number[]; labels?: number[] }[] = [];
    for (let k = 1, start = sizes[0]; k < parts; start += sizes[k], k++) {
      jobs.push({
        x: host.slice(start * per, (start + sizes[k]) * per),
        t: t.slice(start, start + sizes[k]),
        ...(labels ? { labels: labels.slice(start, start + sizes[k]) } : {}),
      });
    }
    const remote = pool.forward(imageShape, jobs);
    // Keep a rejection from going unhandled while this thread computes its own share.
    remote.catch(() => undefined);
    const mine = tf.tidy(() =>
      local(tf.slice(x, [0, 0, 0, 0], [sizes[0], -1, -1, -1]), t.slice(0, sizes[0]), labels?.slice(0, sizes[0])),
    );
    try {
      const theirs = await remote;
      return tf.tidy(() =>
        tf.concat(
          [mine, ...theirs.map((e, k) => tf.tensor4d(e, [sizes[k + 1], imageShape[0], imageShape[1], imageShape[2]]))],
          0,
        ),
      );
    } finally {
      mine.dispose();
    }
  };
}
