/**
 * Kernels that make the tfjs wasm backend able to train a conv net, and fast enough to be useful.
 *
 * Why: tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter` at all (training fails with "Kernel not registered"),
 * its `Conv2DBackpropInput` is a naive loop (~1 GFLOP/s against 10–20 GFLOP/s for its XNNPACK forward conv), and
 * its `BatchMatMul` is only fast for one matrix without transposes. Each override below re-expresses the operation
 * with the backend's fast kernels: the two convolution gradients as forward convolutions (convGradients.ts), and
 * batched / transposed matMul as explicit transposes and one fast 2-D product per batch entry. All of this is
 * checked against tfjs-cpu in the unit tests.
 *
 * The overrides must be registered before the backend is initialised (`registerWasmTrainingKernels`, then
 * `tf.setBackend('wasm')`), and replaced kernels keep their original `setupFunc`.
 */
import * as tf from '@tensorflow/tfjs';
import { asTensor, conv2dBackpropFilter, input, makeConv2dBackpropInput, type KernelArgs } from './convGradients.ts';
import { replaceKernel } from './replaceKernel.ts';
import { registerWasmCopyKernels } from './wasmCopyKernels.ts';

const BACKEND = 'wasm';
let registered = false;

function makeBatchMatMul(original: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const aInfo = input(args.inputs, 'a');
    const bInfo = input(args.inputs, 'b');
    const batchA = aInfo.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    const batchB = bInfo.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    if (!transposeA && !transposeB && batchA === 1 && batchB === 1) return original(args);
    return tf.tidy(() => {
      const a0 = asTensor(aInfo);
      const b0 = asTensor(bInfo);
      const ra = a0.rank;
      const rb = b0.rank;
      const swapLast = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      const a = transposeA ? tf.transpose(a0, swapLast(ra)) : a0;
      const b = transposeB ? tf.transpose(b0, swapLast(rb)) : b0;
      const m = a.shape[ra - 2];
      const k = a.shape[ra - 1];
      const nn = b.shape[rb - 1];
      const outBatch = a.shape.length >= b.shape.length ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
      const batch = Math.max(batchA, batchB);
      if (batch === 1)
        return tf.reshape(tf.matMul(tf.reshape(a, [m, k]), tf.reshape(b, [k, nn])), [...outBatch, m, nn]);
      if (batchA !== batchB && batchA !== 1 && batchB !== 1)
        throw new Error('BatchMatMul: batch dims must match or be 1');
      const as = tf.unstack(tf.reshape(a, [batchA, m, k])) as tf.Tensor2D[];
      const bs = tf.unstack(tf.reshape(b, [batchB, k, nn])) as tf.Tensor2D[];
      const outs = Array.from({ length: batch }, (_, i) =>
        tf.matMul(as[batchA === 1 ? 0 : i], bs[batchB === 1 ? 0 : i]),
      );
      return tf.reshape(tf.stack(outs), [...outBatch, m, nn]);
    });
  };
}

/** Registers the training kernels for the wasm backend (idempotent). Call before `tf.setBackend('wasm')`. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  if (!tf.getKernel('Conv2DBackpropFilter', BACKEND)) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: BACKEND,
      kernelFunc: conv2dBackpropFilter as tf.KernelFunc,
    });
  }
  replaceKernel(BACKEND, 'Conv2DBackpropInput', makeConv2dBackpropInput);
  replaceKernel(BACKEND, 'BatchMatMul', makeBatchMatMul);
  registerWasmCopyKernels();
}
