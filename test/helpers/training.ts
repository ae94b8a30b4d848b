// A fixed batch and a tiny-preset trainer shared by the training tests (test/unit/train.test.ts, test/slow/trainOverfit.test.ts).
import * as tf from '@tensorflow/tfjs';
import { UNet, presetConfig } from '../../sidecar/ddpm/unet.ts';
import { GaussianDiffusion } from '../../sidecar/ddpm/diffusion.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Trainer, type TrainConfig } from '../../sidecar/ddpm/train.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

/** 8 binary 16×16 images: squares at different places (a fixed batch to overfit). */
export function squares(): tf.Tensor4D {
  const data = new Float32Array(8 * 16 * 16);
  for (let i = 0; i < 8; i++) {
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 16; x++) {
        const inside = x >= i && x < i + 6 && y >= (i * 3) % 10 && y < ((i * 3) % 10) + 6;
        data[i * 256 + y * 16 + x] = inside ? 1 : -1;
      }
    }
  }
  return tf.tensor4d(data, [8, 16, 16, 1]);
}

/** A tiny-preset model and its trainer, seeded. */
export function setupTiny(seed: number, train: Partial<TrainConfig>, dropout = 0) {
  const model = UNet.create(presetConfig('tiny', { dropout }), new Rng(seed));
  const diffusion = new GaussianDiffusion(makeSchedule());
  const trainer = new Trainer(model, diffusion, train, seed + 1000);
  return { model, diffusion, trainer, dispose: () => (trainer.dispose(), model.dispose()) };
}

export const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
