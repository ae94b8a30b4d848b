/**
 * A model worker thread (see workerPool.ts): its own tfjs on the wasm (or cpu) backend and its own copy of the model.
 * On request it computes the summed gradients of the micro-batches it is given (ddpm/gradients.ts's
 * microBatchGradients, as on the main thread, whose CPU backend draws dropout masks on the host too) or the inference
 * forward pass ε_θ(x_t, t) of a slice of a sampler's batch. Weights arrive through a SharedArrayBuffer the main
 * thread fills; they are reloaded only when a job's paramsVersion changes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.ts';
import { GaussianDiffusion } from '../ddpm/diffusion.ts';
import { microBatchGradients } from '../ddpm/gradients.ts';
import { makeSchedule, type ScheduleConfig } from '../ddpm/schedule.ts';
import type { UNetConfig } from '../ddpm/unet.ts';
import { backendInferenceEps } from './wasmMemory.ts';
import type { WorkerInit, WorkerJob, WorkerMicroBatch, WorkerReply } from './workerPool.ts';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('modelWorker.ts runs only as a worker thread');
  const init = workerData as WorkerInit;
  await initBackend(init.backend);
  const config: UNetConfig = init.config;
  const diffusion = new GaussianDiffusion(makeSchedule(init.schedule as Partial<ScheduleConfig>));
  const shared = new Float32Array(init.params);
  const params = new Map<string, tf.Variable>();
  const sizes = init.shapes.map((sh) => sh.reduce((a, b) => a * b, 1));
  const offsets: number[] = [];
  let total = 0;
  for (let i = 0; i < init.names.length; i++) {
    offsets.push(total);
    params.set(init.names[i], tf.variable(tf.zeros(init.shapes[i]), true, `mw_${i}`));
    total += sizes[i];
  }
  let loadedVersion = -1;
  const loadParams = (version: number) => {
    if (version === loadedVersion) return;
    tf.tidy(() => {
      init.names.forEach((n, i) =>
        params.get(n)!.assign(tf.tensor(shared.subarray(offsets[i], offsets[i] + sizes[i]), init.shapes[i])),
      );
    });
    loadedVersion = version;
  };

  const gradients = async (
    id: number,
    imageShape: number[],
    microBatches: WorkerMicroBatch[],
  ): Promise<WorkerReply> => {
    let loss: tf.Scalar | null = null;
    const perImage: Float32Array[] = [];
    let sums: tf.NamedTensorMap | null = null;
    try {
      for (const mb of microBatches) {
        const shape = [mb.t.length, ...imageShape] as [number, number, number, number];
        const part = tf.tidy(() => {
          const x = tf.tensor4d(mb.x, shape);
          const e = tf.tensor4d(mb.eps, shape);
          return microBatchGradients(
            params,
            init.names,
            config,
            diffusion,
            x,
            mb.t,
            e,
            mb.weight,
            mb.dropoutSeed,
            undefined,
            mb.labels,
          );
        });
        // The micro-batches' per-image losses, in the order they came (the trainer places them in the batch).
        perImage.push((await part.perImage.data()) as Float32Array);
        part.perImage.dispose();
        if (!loss || !sums) {
          loss = part.value;
          sums = part.grads;
        } else {
          const l0: tf.Scalar = loss;
          const s0: tf.NamedTensorMap = sums;
          loss = tf.add<tf.Scalar>(l0, part.value);
          sums = Object.fromEntries(init.names.map((n) => [n, tf.add(s0[n], part.grads[n])]));
          tf.dispose([l0, part.value, ...Object.values(s0), ...Object.values(part.grads)]);
        }
      }
      const grads = new Float32Array(total);
      let lossValue = 0;
      if (loss && sums) {
        lossValue = (await loss.data())[0];
        for (let i = 0; i < init.names.length; i++)
          grads.set((await sums[init.names[i]].data()) as Float32Array, offsets[i]);
      }
      const flatLosses = new Float32Array(perImage.reduce((s, p) => s + p.length, 0));
      perImage.reduce((offset, p) => (flatLosses.set(p, offset), offset + p.length), 0);
      return { id, loss: lossValue, grads, perImage: flatLosses };
    } finally {
      tf.dispose([...(loss ? [loss] : []), ...(sums ? Object.values(sums) : [])]);
    }
  };

  const eps = backendInferenceEps(params, config);
  const forward = async (
    id: number,
    imageShape: number[],
    x: Float32Array,
    t: number[],
    labels?: number[],
  ): Promise<WorkerReply> => {
    const y = tf.tidy(() => eps(tf.tensor4d(x, [t.length, imageShape[0], imageShape[1], imageShape[2]]), t, labels));
    try {
      // A copy of its own: the reply transfers it, and a backend may hand out its own storage from data().
      return { id, eps: new Float32Array((await y.data()) as Float32Array) };
    } finally {
      y.dispose();
    }
  };

  // A job that fails is answered with its error: nothing waits on the promise.
  const answer = async (job: WorkerJob): Promise<void> => {
    try {
      loadParams(job.paramsVersion);
      const reply =
        job.kind === 'gradients'
          ? await gradients(job.id, job.imageShape, job.microBatches)
          : await forward(job.id, job.imageShape, job.x, job.t, job.labels);
      const transfer = 'grads' in reply ? [reply.grads.buffer] : 'eps' in reply ? [reply.eps.buffer] : [];
      port.postMessage(reply, transfer as ArrayBuffer[]);
    } catch (e) {
      port.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) } satisfies WorkerReply);
    }
  };
  port.on('message', (job: WorkerJob) => void answer(job));
  port.postMessage({ ready: true });
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ fatal: e instanceof Error ? e.message : String(e) });
});
