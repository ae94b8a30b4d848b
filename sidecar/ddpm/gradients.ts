/**
 * The gradient of L_simple (Ho et al. 2020, eq. 14) for one micro-batch: x_t = q_sample(x_0, t, ε), loss =
 * mean ‖ε − ε_θ(x_t, t)‖², weighted by the micro-batch's share of the batch so that summing micro-batches gives the
 * full-batch gradient. Shared by the Trainer (on its own thread) and the model worker threads that compute some of
 * its micro-batches (sidecar/parallel/modelWorker.ts), so that both compute the same function from the same inputs.
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './diffusion.ts';
import type { DropoutFn } from './layers.ts';
import { Rng } from './rng.ts';
import { unetForward, type UNetConfig } from './unet.ts';

// A type alias, not an interface: tf.tidy's TensorContainer needs an index-signature-compatible type.
export type MicroBatchGradients = {
  /** weight · loss of this micro-batch. */
  value: tf.Scalar;
  /** Gradients by parameter name. */
  grads: tf.NamedTensorMap;
  /** Each image's ‖ε − ε_θ‖² / D (unweighted): the loss by timestep that training reports (Ho's code tracks it). */
  perImage: tf.Tensor1D;
};

/**
 * `params` must be tf.Variables (variableGrads differentiates with respect to them), listed in `names` order.
 * Dropout masks are seeded from `dropoutSeed` (one per micro-batch, drawn by the trainer up front) and computed by
 * `dropoutOp` (default: layers.ts's host-drawn masks). A conditional model gets each image's class (NULL_CLASS for
 * none) in `labels`.
 */
export function microBatchGradients(
  params: ReadonlyMap<string, tf.Variable>,
  names: readonly string[],
  config: UNetConfig,
  diffusion: GaussianDiffusion,
  x0: tf.Tensor4D,
  t: readonly number[],
  eps: tf.Tensor4D,
  weight: number,
  dropoutSeed: number,
  dropoutOp?: DropoutFn,
  labels?: readonly number[],
): MicroBatchGradients {
  return tf.tidy(() => {
    const vars = names.map((n) => params.get(n)!);
    const dropout = new Rng(dropoutSeed);
    const xt = diffusion.qSample(x0, t, eps);
    let prediction: tf.Tensor4D | null = null;
    const r = tf.variableGrads(() => {
      const epsTheta = unetForward(params, config, xt, t, {
        training: true,
        nextSeed: () => dropout.seed(),
        dropout: dropoutOp,
        labels,
      });
      // Kept past the gradient's scope for the per-image losses below (released here once they are computed).
      prediction = tf.keep(epsTheta);
      return tf.mul(diffusion.lossSimple(eps, epsTheta), weight) as tf.Scalar;
    }, vars);
    const kept = prediction as tf.Tensor4D | null;
    if (!kept) throw new Error('internal: no prediction');
    const perImage = tf.mean(tf.squaredDifference(eps, kept), [1, 2, 3]) as tf.Tensor1D;
    kept.dispose();
    // variableGrads keys gradients by variable name; re-key them by parameter name.
    return {
      value: r.value,
      grads: Object.fromEntries(names.map((name, i) => [name, r.grads[vars[i].name]])) as tf.NamedTensorMap,
      perImage,
    };
  });
}
