// Tensor comparisons and host-side random data shared by the kernel and gradient tests.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../sidecar/ddpm/rng.ts';

/** max |a − b| over max |b|: the error relative to the reference's scale (async reads only). */
export async function maxRelDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  assert.equal(x.length, y.length);
  let scale = 0;
  for (const v of y) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(scale, 1e-12));
  return worst;
}

export interface HostTensor {
  shape: number[];
  values: Float32Array;
}

/** Uniform in [−1, 1) on the host, so that each backend builds its own tensors (no cross-backend data moves). */
export function randn(shape: number[], rng: Rng): HostTensor {
  const values = new Float32Array(shape.reduce((p, q) => p * q, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform() * 2 - 1;
  return { shape, values };
}

export const mk = (h: HostTensor): tf.Tensor => tf.tensor(h.values, h.shape);

/** Convolution shapes the gradient-kernel tests run on each backend: same/valid, strides 1 and 2, 1×1, odd sizes. */
export const CONV_GRAD_CASES: { x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' }[] = [
  { x: [2, 8, 8, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same' },
  { x: [3, 8, 8, 4], f: [3, 3, 4, 4], stride: 2, pad: 'same' },
  { x: [2, 7, 9, 4], f: [3, 3, 4, 2], stride: 2, pad: 'same' },
  { x: [2, 6, 6, 4], f: [1, 1, 4, 6], stride: 1, pad: 'same' },
  { x: [1, 9, 9, 2], f: [3, 3, 2, 3], stride: 2, pad: 'valid' },
  { x: [5, 5, 3, 7], f: [3, 3, 7, 1], stride: 1, pad: 'same' },
  { x: [1, 1, 1, 3], f: [3, 3, 3, 2], stride: 1, pad: 'same' },
];

/**
 * Buffers alive at the end of the forward pass of `layers` stacked applications of `layer`, inside tf.grads: what
 * the tape keeps for the backward pass, plus whatever else is alive (callers subtract a baseline). Counted as the
 * backend's data ids: tf.memory().numBytes would count every reshape and clone of a buffer again.
 */
export function buffersKeptForBackward(x: tf.Tensor4D, layers: number, layer: (h: tf.Tensor4D) => tf.Tensor4D): number {
  let kept = 0;
  tf.dispose(
    tf.grads((a: tf.Tensor) => {
      let h = a as tf.Tensor4D;
      for (let i = 0; i < layers; i++) h = layer(h);
      const loss = tf.sum(h);
      kept = tf.engine().backend.numDataIds();
      return loss;
    })([x]),
  );
  return kept;
}

/**
 * The most tensor bytes alive after any kernel that `fn` runs, above those alive before it (synchronous fn). Sampled
 * after every engine.runKernel call, so it sees what tf.profile's per-kernel snapshots can miss inside custom ops.
 */
export function peakBytesDuring(fn: () => void): number {
  // engine.runKernel is public API, but not in the exported Engine type's surface as a writable member.
  const engine = tf.engine() as unknown as { runKernel: (...args: unknown[]) => unknown };
  const runKernel = engine.runKernel;
  const start = tf.memory().numBytes;
  let peak = start;
  engine.runKernel = (...args: unknown[]) => {
    const out = runKernel.apply(engine, args);
    peak = Math.max(peak, tf.memory().numBytes);
    return out;
  };
  try {
    fn();
  } finally {
    engine.runKernel = runKernel;
  }
  return peak - start;
}
