/**
 * A gradient worker thread (see gradientPool.ts): its own tfjs on the wasm backend, its own copy of the model, and
 * on request the summed gradients of the micro-batches it is given, computed by microBatchGradients as on the main
 * thread. Parameters arrive through a SharedArrayBuffer the main thread fills before each step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.ts';
import { GaussianDiffusion } from './diffusion.ts';
import { microBatchGradients } from './gradients.ts';
import { makeSchedule, type ScheduleConfig } from './schedule.ts';
import type { UNetConfig } from './unet.ts';
import type { WorkerInit, WorkerJob, WorkerReply } from './gradientPool.ts';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('gradientWorker.ts runs only as a worker thread');
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
    params.set(init.names[i], tf.variable(tf.zeros(init.shapes[i]), true, `gw_${i}`));
    total += sizes[i];
  }
  port.on('message', async (job: WorkerJob) => {
    let reply: WorkerReply;
    try {
      tf.tidy(() => {
        init.names.forEach((n, i) => params.get(n)!.assign(tf.tensor(shared.subarray(offsets[i], offsets[i] + sizes[i]), init.shapes[i])));
      });
      let loss: tf.Scalar | null = null;
      let sums: tf.NamedTensorMap | null = null;
      for (const mb of job.microBatches) {
        const shape = [mb.t.length, ...job.imageShape] as [number, number, number, number];
        const part = tf.tidy(() => {
          const x = tf.tensor4d(mb.x, shape);
          const e = tf.tensor4d(mb.eps, shape);
          return microBatchGradients(params, init.names, config, diffusion, x, mb.t, e, mb.weight, mb.dropoutSeed);
        });
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
        for (let i = 0; i < init.names.length; i++) grads.set(await sums[init.names[i]].data() as Float32Array, offsets[i]);
        tf.dispose([loss, ...Object.values(sums)]);
      }
      reply = { id: job.id, loss: lossValue, grads };
      port.postMessage(reply, [grads.buffer]);
    } catch (e) {
      reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
      port.postMessage(reply);
    }
  });
  port.postMessage({ ready: true });
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ fatal: e instanceof Error ? e.message : String(e) });
});
