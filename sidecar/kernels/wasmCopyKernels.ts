/**
 * Copying kernels of the tfjs wasm backend that copy less.
 *
 * - Slice, SplitV, Unpack cost O(output) instead of O(input) per call. tfjs-backend-wasm 4.22's Slice starts with
 *   `backend.readSync(x)`, which copies the *whole* input out of the wasm heap on every call, and SplitV and Unpack
 *   call it once per output: splitting a flat optimizer vector into ~300 parameters took ~1 s per training step,
 *   and attention's per-image slices paid for the whole batch each time. These copy straight from heap views.
 * - Identity shares the input's buffer (reference-counted, as tfjs-cpu and the wasm Reshape do) instead of
 *   copying it. The engine clones every tensor it saves for backprop, so the copying Identity ran ~900 times per
 *   training step of a small U-Net. Tensors are immutable, so sharing is safe.
 */
import * as tf from '@tensorflow/tfjs';
import { replaceKernel } from './replaceKernel.ts';

/** The part of BackendWasm these kernels use (the class is not exported in a typed way from the package). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: tf.DataId): void;
}

const BACKEND = 'wasm';

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Copies x[begin : begin + size] into a new output of shape `outShape` (same element count as `size`). */
function sliceInto(
  backend: WasmHeapBackend,
  x: tf.TensorInfo,
  begin: readonly number[],
  size: readonly number[],
  outShape: number[] = [...size],
): tf.TensorInfo {
  if (x.dtype === 'string' || x.dtype === 'complex64') throw new Error(`wasm slice of ${x.dtype} is not supported`);
  // Allocate first: growing the heap detaches earlier views.
  const out = backend.makeOutput(outShape, x.dtype);
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    dst[0] = src[0];
    return out;
  }
  const xs = strides(x.shape);
  // Trailing dimensions taken whole merge into one contiguous block with the first partial dimension before them.
  let k = rank - 1;
  while (k > 0 && size[k] === x.shape[k]) k--;
  const block = size[k] * xs[k];
  const os = strides(size);
  const copy = (dim: number, srcOff: number, dstOff: number): void => {
    if (dim === k) {
      const from = srcOff + begin[k] * xs[k];
      dst.set(src.subarray(from, from + block), dstOff);
      return;
    }
    for (let i = 0; i < size[dim]; i++) copy(dim + 1, srcOff + (begin[dim] + i) * xs[dim], dstOff + i * os[dim]);
  };
  copy(0, 0, 0);
  return out;
}

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`kernel input '${name}' is missing`);
  return t;
}

function slice({ inputs, attrs, backend }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const x = input(inputs, 'x');
  const a = attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, a.begin, a.size);
  return sliceInto(backend as unknown as WasmHeapBackend, x, begin, size);
}

function splitV({ inputs, attrs, backend }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const x = input(inputs, 'x');
  const a = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number | number[] };
  const axis = tf.util.parseAxisParam(a.axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, a.numOrSizeSplits, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const out = sliceInto(backend as unknown as WasmHeapBackend, x, begin, size);
    begin[axis] += s;
    return out;
  });
}

function unpack({ inputs, attrs, backend }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const value = input(inputs, 'value');
  let axis = (attrs as unknown as { axis: number }).axis;
  if (axis < 0) axis += value.shape.length;
  const outShape = value.shape.filter((_, i) => i !== axis);
  const size = [...value.shape];
  size[axis] = 1;
  const begin = new Array<number>(value.shape.length).fill(0);
  return Array.from({ length: value.shape[axis] }, (_, i) => {
    begin[axis] = i;
    return sliceInto(backend as unknown as WasmHeapBackend, value, begin, size, outShape);
  });
}

function makeIdentity(original: tf.KernelFunc) {
  return (args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | tf.TensorInfo[] => {
    const x = input(args.inputs, 'x');
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as WasmHeapBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

const KERNELS: Record<string, (original: tf.KernelFunc) => tf.KernelFunc> = {
  Slice: () => slice as tf.KernelFunc,
  SplitV: () => splitV as tf.KernelFunc,
  Unpack: () => unpack as tf.KernelFunc,
  Identity: (original) => makeIdentity(original) as tf.KernelFunc,
};

/** Replaces the wasm Slice, SplitV, Unpack and Identity kernels. Call before `tf.setBackend('wasm')`. */
export function registerWasmCopyKernels(): void {
  for (const [name, make] of Object.entries(KERNELS)) replaceKernel(BACKEND, name, make);
}
