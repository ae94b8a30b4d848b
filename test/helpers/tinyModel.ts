// A tiny U-Net whose output is not trivially 0, for the tests of the sampling loops (sampler, SDEdit, RePaint,
// the bits/dim loop).
import * as tf from '@tensorflow/tfjs';
import type { EpsModel } from '../../sidecar/ddpm/sampler.ts';
import { UNet, presetConfig } from '../../sidecar/ddpm/unet.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

/**
 * The tiny preset with random weights everywhere: its zero-initialised layers (the output convolutions, Ho et al.'s
 * init) are perturbed, so that ε_θ is not 0. Seeded: the same seed gives the same model.
 */
export function tinyModel(seed: number): UNet {
  const model = UNet.create(presetConfig('tiny'), new Rng(seed));
  for (const s of model.specs.filter((sp) => sp.init === 'zeros' && sp.name.endsWith('.weight'))) {
    const w = model.params.get(s.name)!;
    w.assign(tf.randomNormal(w.shape, 0, 0.05, 'float32', 17));
  }
  return model;
}

/** The model as the samplers' ε(x, t). */
export const asEps =
  (m: UNet): EpsModel =>
  (x, t) =>
    m.predictEps(x, t);
