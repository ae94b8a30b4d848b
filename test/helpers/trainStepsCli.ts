// Trains the tiny preset for a few steps on a chosen backend in a fresh process and prints the losses (and, on WebGPU,
// the most bytes of GPU buffers held at once) as JSON.
// usage: node --import tsx trainStepsCli.ts BACKEND STEPS
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend, type BackendChoice } from '../../sidecar/backend.ts';
import { UNet, presetConfig } from '../../sidecar/ddpm/unet.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { ParallelTrainer } from '../../sidecar/parallel/trainer.ts';

async function main() {
  const [backend, steps] = process.argv.slice(2);
  const report = await initBackend(backend as BackendChoice);
  const model = UNet.create(presetConfig('tiny'), new Rng(1));
  const trainer = new ParallelTrainer(model, new GaussianDiffusion(makeSchedule()), { lr: 1e-3, warmupSteps: 0 }, 2);
  const x0 = tf.randomUniform([4, 16, 16, 1], -1, 1, 'float32', 1) as tf.Tensor4D;
  const losses: number[] = [];
  for (let i = 0; i < Number(steps); i++) losses.push((await trainer.trainStep(x0)).loss);
  const leakBefore = tf.memory().numTensors;
  await trainer.trainStep(x0);
  const leaked = tf.memory().numTensors - leakBefore;
  // WebGPU: what the buffer pool held at most (ours keeps a peak; tfjs' own never shrinks, so its current figure is).
  const pool = (
    tf.backend() as unknown as { bufferManager?: { peakBytesAllocated?: number; numBytesAllocated?: number } }
  ).bufferManager;
  const gpuPeakBytes = backend === 'webgpu' ? (pool?.peakBytesAllocated ?? pool?.numBytesAllocated ?? null) : null;
  x0.dispose();
  trainer.dispose();
  model.dispose();
  await shutdownBackend();
  console.log(JSON.stringify({ backend: report.name, device: report.device, losses, leaked, gpuPeakBytes }));
}
main().catch((e) => {
  console.log(JSON.stringify({ error: (e as Error).message }));
  process.exitCode = 1;
});
