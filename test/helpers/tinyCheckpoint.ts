// A small weights-only checkpoint for the evaluation tests: the tiny preset at MNIST's 28×28, a short schedule, and
// weights with the zero-initialised layers perturbed so that ε_θ is not 0.
import * as tf from '@tensorflow/tfjs';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { presetConfig, UNet } from '../../sidecar/ddpm/unet.ts';

export function saveTinyCheckpoint(file: string, T: number, seed = 1, numClasses?: number): void {
  const config = presetConfig('tiny', { imageSize: 28, ...(numClasses ? { numClasses } : {}) });
  const model = UNet.create(config, new Rng(seed));
  for (const s of model.specs.filter((sp) => sp.init === 'zeros' && sp.name.endsWith('.weight'))) {
    const w = model.params.get(s.name)!;
    w.assign(tf.randomNormal(w.shape, 0, 0.05, 'float32', seed));
  }
  const groups = new Map(
    [...model.params].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]),
  );
  model.dispose();
  saveCheckpoint(file, {
    meta: {
      format: CHECKPOINT_FORMAT,
      kind: 'weights',
      model: config,
      schedule: makeSchedule({ T }).config,
      step: 7,
      seed,
      created: new Date().toISOString(),
    },
    groups: { model: groups },
  });
}
