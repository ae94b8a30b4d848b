/**
 * Dropout on the GPU for the WebGPU backend: y = x ⊙ mask / (1 − rate), with the mask computed inside the shader
 * from a counter-based hash of (element index, seed) instead of being drawn on the host and uploaded.
 *
 * Why: tfjs draws dropout's uniforms in JavaScript (seedrandom's Alea); at the cifar10 preset's batch 128 the masks
 * hold ~200M values per training step, which cost 2 s of a 3.8 s step on an H200 (bench/RESULTS.md), and they are
 * activation-sized tensors on the gradient tape. Here nothing is drawn on the host and nothing is kept: the
 * backward pass runs the same shader with the same seed on dy (dL/dx = dL/dy ⊙ mask / (1 − rate)).
 *
 * The hash is Wellons' "lowbias32" applied twice, keyed by two 32-bit words from our generator; keep iff
 * hash ≥ rate·2³², as on the host path (Rng.fillDropoutMask). The two paths draw different masks for the same seed;
 * each is reproducible on its own backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { dropout as hostDropout, type DropoutFn } from '../ddpm/layers.ts';
import { Rng } from '../ddpm/rng.ts';

type WebgpuUtil = (typeof import('@tensorflow/tfjs-backend-webgpu'))['webgpu_util'];

// Set once the backend module has been loaded (sidecar/backend.ts loads it late, after navigator.gpu exists; a
// static import here would load it too early and it would never register itself).
let util: WebgpuUtil | null = null;

export function enableWebgpuDropout(webgpuUtil: WebgpuUtil): void {
  util = webgpuUtil;
}

class DropoutProgram implements WebGPUProgram {
  variableNames = ['x'];
  outputShape: number[];
  shaderKey = 'ddpmDropout';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  uniforms = 'seedA : u32, seedB : u32, threshold : u32, scale : f32,';

  constructor(shape: number[], u: WebgpuUtil) {
    this.outputShape = shape;
    this.dispatchLayout = u.flatDispatchLayout(shape);
    this.dispatch = u.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
      fn lowbias32(v : u32) -> u32 {
        var h = v;
        h = h ^ (h >> 16u);
        h = h * 0x7feb352du;
        h = h ^ (h >> 15u);
        h = h * 0x846ca68bu;
        h = h ^ (h >> 16u);
        return h;
      }
      fn main(index : i32) {
        if (index < uniforms.size) {
          let r = lowbias32(lowbias32(u32(index) ^ uniforms.seedA) + uniforms.seedB);
          let keep = select(0.0, uniforms.scale, r >= uniforms.threshold);
          setOutputAtIndex(index, getXByOutputIndex(index) * keep);
        }
      }
    `;
  }
}

/** Whether dropout can run in a shader: the WebGPU backend is active and its module is loaded. */
export function webgpuDropoutAvailable(): boolean {
  return util !== null && tf.getBackend() === 'webgpu';
}

function applyMask(t: tf.Tensor, seedA: number, seedB: number, rate: number): tf.Tensor {
  if (!util) throw new Error('WebGPU dropout used before the WebGPU backend was loaded');
  const backend = tf.backend() as unknown as WebGPUBackend;
  const program = new DropoutProgram(t.shape, util);
  const uniforms = [
    { type: 'uint32', data: [seedA >>> 0] },
    { type: 'uint32', data: [seedB >>> 0] },
    { type: 'uint32', data: [Math.min(Math.floor(rate * 4294967296), 4294967295)] },
    { type: 'float32', data: [1 / (1 - rate)] },
  ];
  const out = backend.runWebGPUProgram(program, [t], 'float32', uniforms);
  return tf.engine().makeTensorFromTensorInfo(out);
}

/** Inverted dropout in one shader, forward and backward; `seedA`/`seedB` pick the mask. */
export function webgpuDropout<T extends tf.Tensor>(x: T, rate: number, seedA: number, seedB: number): T {
  if (x.dtype !== 'float32') throw new Error(`dropout needs float32, got ${x.dtype}`);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    return {
      value: applyMask(input, seedA, seedB, rate),
      gradFunc: (dy: tf.Tensor) => applyMask(dy, seedA, seedB, rate),
    };
  });
  return op(x) as T;
}

/**
 * Dropout on whatever backend is active (a DropoutFn for the U-Net's blocks, ddpm/layers.ts): in the shader on
 * WebGPU, its two keys the first two words of Rng(seed); elsewhere the host-drawn mask of ddpm/layers.ts.
 */
export const backendDropout: DropoutFn = (x, rate, seed) => {
  if (!webgpuDropoutAvailable()) return hostDropout(x, rate, seed);
  const rng = new Rng(seed);
  return webgpuDropout(x, rate, rng.nextU32(), rng.nextU32());
};
