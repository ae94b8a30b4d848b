/**
 * How many images one pass of the U-Net may take on the wasm backend. Its heap is 32-bit memory: at most 4 GiB per
 * thread, and it never shrinks. Running past it aborts the wasm module ("table index is out of bounds", then every
 * later op fails with "Aborted()"), which would leave the sidecar unusable, so the engine splits large batches into
 * passes that fit instead: sampling and interpolation into forward passes of at most `maxInferenceBatch` images,
 * training into micro-batches of at most `maxTrainingMicroBatch` (both give the same result as one pass: every layer
 * works per image, and micro-batch gradients add up to the batch's).
 *
 * The estimates are linear fits to measured wasm heap sizes (bench/RESULTS.md), with a margin: per image, a forward
 * pass holds about 48 full-resolution feature maps at once; a training step keeps ~11–14 floats per activation
 * element of the whole network for its backward pass, beside ~8 weight-sized buffers (weights, XNNPACK's packed copy,
 * EMA, Adam's moments, gradients and their flattened copy).
 */
import * as tf from '@tensorflow/tfjs';
import { inferenceEps, type UNetConfig } from '../ddpm/unet.ts';

/** The heap size passes are planned for: 0.5 GiB below the 4 GiB limit, for fragmentation and host copies. */
export const WASM_HEAP_BUDGET = 3.5 * 1024 ** 3;

/** What one inference pass may use for activations: the rest holds the weights, their packed copy and the outputs. */
const INFERENCE_BUDGET = 2 * 1024 ** 3;

/** Activation elements of one image's forward pass, summed over every block output (down path, middle, up path). */
export function activationElements(config: UNetConfig): number {
  let elements = 0;
  let res = config.imageSize;
  let ch = config.ch;
  const skips: number[] = [ch];
  const attention = (r: number, c: number) => (config.attnResolutions.includes(r) ? r * r * c + r ** 4 : 0);
  config.chMult.forEach((mult, level) => {
    for (let i = 0; i < config.numResBlocks; i++) {
      ch = config.ch * mult;
      elements += res * res * ch + attention(res, ch);
      skips.push(ch);
    }
    if (level !== config.chMult.length - 1) {
      res /= 2;
      elements += res * res * ch;
      skips.push(ch);
    }
  });
  elements += 2 * res * res * ch + attention(res, ch);
  for (let level = config.chMult.length - 1; level >= 0; level--) {
    for (let i = 0; i < config.numResBlocks + 1; i++) {
      const out = config.ch * config.chMult[level];
      elements += res * res * (ch + (skips.pop() ?? 0) + out) + attention(res, out);
      ch = out;
    }
    if (level !== 0) {
      res *= 2;
      elements += res * res * ch;
    }
  }
  return Math.ceil(elements);
}

/**
 * The most images one inference forward pass takes on `backend` (no limit but on wasm; WasmMemoryError if not even
 * one fits). Block outputs are released as the pass goes (ddpm/unet.ts), so the peak is about 48 full-resolution feature
 * maps per image (measured: 46 for the mnist preset, 45 for cifar10), plus attention matrices; passes get 2 GiB for
 * that. cifar10: 83, mnist: 445.
 */
export function maxInferenceBatch(config: UNetConfig, backend: string): number {
  if (backend !== 'wasm') return Infinity;
  const perImage = inferenceBytesPerImage(config);
  if (perImage > INFERENCE_BUDGET) throw new WasmMemoryError('a forward pass', perImage, INFERENCE_BUDGET);
  return Math.floor(INFERENCE_BUDGET / perImage);
}

function inferenceBytesPerImage(config: UNetConfig): number {
  const maps = 48 * 4 * config.imageSize ** 2 * config.ch;
  const attention = config.attnResolutions.reduce((s, r) => s + 2 * 4 * r ** 4, 0);
  return maps + attention;
}

/** A model too large for even one image per pass in wasm's heap: a clear error instead of an aborted wasm module. */
export class WasmMemoryError extends Error {
  constructor(what: string, bytesPerImage: number, budget: number) {
    const gb = (b: number) => (b / 1024 ** 3).toFixed(1);
    super(
      `this model needs about ${gb(bytesPerImage)} GiB per image for ${what}, more than the wasm backend's 4 GiB memory leaves for it (${gb(budget)} GiB): use a GPU (webgpu) or the native backend (DDPM: Install CUDA Backend)`,
    );
    this.name = 'WasmMemoryError';
  }
}

/**
 * The most images one training micro-batch takes on `backend` (no limit but on wasm; WasmMemoryError if not even
 * one fits), for a model of `params` parameters. Measured on cifar10: heap 1,458 MB at batch 2 and 2,304 MB at
 * batch 8, i.e. 1,176 MB (8.2 weight sizes) + 141 MB per image (10.9 floats per activation element); mnist at batch 8
 * fits the same line within 10%. With margins (9 weight sizes, 14 floats per element): cifar10 12 images, mnist 173.
 */
export function maxTrainingMicroBatch(config: UNetConfig, params: number, backend: string): number {
  if (backend !== 'wasm') return Infinity;
  const budget = WASM_HEAP_BUDGET - 9 * 4 * params;
  const perImage = 14 * 4 * activationElements(config);
  if (perImage > budget) throw new WasmMemoryError('a training step', perImage, Math.max(0, budget));
  return Math.floor(budget / perImage);
}

/**
 * ε_θ for `params` (ddpm/unet.ts's inferenceEps) in passes of at most maxInferenceBatch images on the current
 * backend: what the sampler and the model workers run. WasmMemoryError here, before anything runs, if not even one
 * image fits.
 */
export function backendInferenceEps(
  params: ReadonlyMap<string, tf.Tensor>,
  config: UNetConfig,
): (x: tf.Tensor4D, t: readonly number[], labels?: readonly number[]) => tf.Tensor4D {
  return inferenceEps(params, config, maxInferenceBatch(config, tf.getBackend()));
}
