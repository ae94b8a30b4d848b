/**
 * Replaces a backend's registered kernel with one built from it, keeping the original's setupFunc (the wasm backend
 * binds its C++ entry points there). `make` receives the original kernelFunc, to fall back on for cases it does not
 * handle.
 */
import * as tf from '@tensorflow/tfjs';

export function replaceKernel(backend: string, name: string, make: (original: tf.KernelFunc) => tf.KernelFunc): void {
  const original = tf.getKernel(name, backend);
  if (!original)
    throw new Error(`${backend} kernel ${name} is not registered: is @tensorflow/tfjs-backend-${backend} loaded?`);
  tf.unregisterKernel(name, backend);
  tf.registerKernel({ ...original, kernelFunc: make(original.kernelFunc) });
}
