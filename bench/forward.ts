/** The bare forward pass both benchmarks time: one ε prediction at a random timestep per image, read back. */
import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../sidecar/ddpm/rng.ts';
import type { EpsModel } from '../sidecar/ddpm/sampler.ts';

export async function forwardAtRandomTimesteps(eps: EpsModel, x: tf.Tensor4D, steps: number, rng: Rng): Promise<void> {
  const t = Array.from({ length: x.shape[0] }, () => rng.int(steps));
  const y = await eps(x, t);
  try {
    await y.data();
  } finally {
    y.dispose();
  }
}
