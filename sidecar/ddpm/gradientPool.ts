/**
 * Data-parallel gradients on the CPU: worker threads, each with its own tfjs (wasm) and model copy, compute the
 * gradients of some of a batch's micro-batches while the main thread computes the rest; the trainer sums them and
 * takes one optimizer step.
 *
 * Why: tfjs-wasm runs one thread in Node (its threaded build needs a browser-style worker script), so a training
 * step used one core of the machine. Micro-batches are independent given the weights, and all randomness is drawn
 * up front (Trainer.trainStep), so the result is the same step as computing the micro-batches one after another,
 * up to the order of floating-point sums.
 *
 * Cost per step: the weights are copied once into a SharedArrayBuffer all workers read (4 MB for the mnist preset,
 * 143 MB for cifar10), the micro-batches' images and noise go to the workers, and each worker sends back one flat
 * gradient vector.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BackendChoice } from '../backend.ts';
import type { ScheduleConfig } from './schedule.ts';
import type { UNetConfig } from './unet.ts';

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
}

export interface WorkerJob {
  id: number;
  /** [H, W, C] */
  imageShape: number[];
  microBatches: WorkerMicroBatch[];
}

export type WorkerReply = { id: number; loss: number; grads: Float32Array } | { id: number; error: string };

/** Below this many parameters a step is too short for threads to pay for their synchronisation (tiny: slower). */
export const MIN_PARAMS_FOR_WORKERS = 500_000;

/**
 * The number of gradient threads for a run: a number as given, or for 'auto' one per core (at most 8, at most one
 * per two images) for models of at least MIN_PARAMS_FOR_WORKERS parameters, else 1.
 */
export function resolveWorkers(workers: number | 'auto' | undefined, batch: number, params: number, cores = os.availableParallelism()): number {
  if (workers === undefined || workers === 'auto') {
    return params < MIN_PARAMS_FOR_WORKERS || batch < 4 ? 1 : Math.max(1, Math.min(cores, 8, Math.floor(batch / 2)));
  }
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error(`workers must be an integer in 1..64 or 'auto', got ${String(workers)}`);
  return workers;
}

function workerScript(): { file: string; eval: boolean } {
  // From the esbuild bundle (dist/*.js) the worker is dist/gradient-worker.js; from source (tests, npm scripts run
  // with tsx) it is the .ts file, loaded through tsx's require hook: loaders registered with --import do not reach
  // worker threads in Node 20.
  const bundled = path.join(__dirname, 'gradient-worker.js');
  if (__filename.endsWith('.js')) {
    if (!fs.existsSync(bundled)) throw new Error(`the gradient worker script is missing: ${bundled} (rebuild with npm run build)`);
    return { file: bundled, eval: false };
  }
  const source = path.join(__dirname, 'gradientWorker.ts');
  return { file: `require('tsx/cjs'); require(${JSON.stringify(source)});`, eval: true };
}

export class GradientPool {
  private readonly shared: Float32Array;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: { loss: number; grads: Float32Array }) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  private constructor(
    private readonly workers: Worker[],
    buffer: SharedArrayBuffer,
  ) {
    this.shared = new Float32Array(buffer);
    for (const w of workers) {
      w.on('message', (m: WorkerReply) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if ('error' in m) p.reject(new Error(`gradient worker: ${m.error}`));
        else p.resolve(m);
      });
      const fail = (e: Error) => {
        this.dead ??= e;
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      };
      w.on('error', fail);
      w.on('exit', (code) => {
        if (code !== 0) fail(new Error(`a gradient worker exited with code ${code}`));
      });
    }
  }

  /** Starts `n` workers (each loads tfjs and builds the model: ~1 s) and waits until all are ready. */
  static async start(n: number, init: Omit<WorkerInit, 'params'>): Promise<GradientPool> {
    const total = init.shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    const buffer = new SharedArrayBuffer(total * 4);
    const script = workerScript();
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const w = new Worker(script.file, { eval: script.eval, workerData: { ...init, params: buffer } satisfies WorkerInit });
        // Idle workers must not keep the process alive (the trainer's dispose() terminates them).
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
                } else if (m.fatal) reject(new Error(`a gradient worker failed to start: ${m.fatal}`));
              };
              w.on('message', onMessage);
              w.once('error', reject);
              w.once('exit', (code) => reject(new Error(`a gradient worker exited with code ${code} while starting`)));
            }),
        ),
      );
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new GradientPool(workers, buffer);
  }

  get size(): number {
    return this.workers.length;
  }

  /** The parameter buffer the workers read: fill it (flat, in `names` order) before `run`. */
  get params(): Float32Array {
    return this.shared;
  }

  /** Hands worker i the micro-batches in jobs[i]; resolves with each worker's loss and summed gradients. */
  run(imageShape: number[], jobs: WorkerMicroBatch[][]): Promise<{ loss: number; grads: Float32Array }[]> {
    if (this.dead) return Promise.reject(this.dead);
    if (jobs.length > this.workers.length) throw new Error(`${jobs.length} jobs for ${this.workers.length} workers`);
    return Promise.all(
      jobs.map(
        (microBatches, i) =>
          new Promise<{ loss: number; grads: Float32Array }>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            const job: WorkerJob = { id, imageShape, microBatches };
            this.workers[i].postMessage(job);
          }),
      ),
    );
  }

  async dispose(): Promise<void> {
    const e = new Error('the gradient workers were stopped');
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.dead ??= e;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
