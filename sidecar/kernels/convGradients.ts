/**
 * Convolution gradients re-expressed with the backends' fast kernels, for backends whose own gradient kernels are
 * missing or slow (registered per backend by wasmTrainingKernels.ts and webgpuTrainingKernels.ts):
 *  - filter gradient = a forward convolution of the input (batch ↔ channels swapped) with dy as the filter,
 *    dilated by the stride. tfjs-wasm has no Conv2DBackpropFilter at all; tfjs-webgpu's is one thread per filter
 *    element looping over batch × height × width, which took 70% of a cifar10 training step on an H200;
 *  - or, for large convolutions on a GPU, filter gradient = an im2col matrix product with its reduction split
 *    across a batched matMul (makeConv2dBackpropFilterIm2col);
 *  - input gradient = a forward convolution of dy (zero-dilated by the stride, padded) with the flipped,
 *    transposed filter (a "full" correlation). tfjs-wasm's own is a naive loop (~1 GFLOP/s against 10–20 GFLOP/s
 *    for its XNNPACK forward convolution).
 * 1×1 convolutions become plain matrix products. All are checked against tfjs-cpu in the unit tests.
 */
import * as tf from '@tensorflow/tfjs';

export type KernelArgs = Parameters<tf.KernelFunc>[0];
type ConvAttrs = {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

export function asTensor<R extends tf.Rank>(info: tf.TensorInfo): tf.Tensor<R> {
  // Kernel inputs are TensorInfos of live tensors: wrap them without copying. The wrapper's disposal decrements
  // the data's reference count, so it must take a reference of its own first.
  tf.backend().incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
}

export function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`kernel input '${name}' is missing`);
  return t;
}

function convInfoOf(xShape: number[], filterShape: number[], attrs: ConvAttrs): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC') throw new Error('the convolution gradient kernels support NHWC only');
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * Inserts (s−1) zeros between neighbouring rows/columns of dy: the input of a strided conv's transpose. Pads stay
 * rank 4: tfjs-webgpu's Pad shader does not compile for rank 6.
 */
function dilateSpatially(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const cols = tf.pad(tf.reshape(dy, [n * h, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]); // [n·h, w, sw, c]
  const rows = tf.pad(tf.reshape(cols, [n, h, 1, w * sw * c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
  ]); // [n, h, sh, w·sw·c]
  return tf.slice(
    tf.reshape<tf.Rank.R4>(rows, [n, h * sh, w * sw, c]),
    [0, 0, 0, 0],
    [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c],
  );
}

/** x padded as the forward convolution pads it (a negative bottom/right pad, rows it never reads, becomes 0). */
function padAsForward(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { top, bottom, left, right } = info.padInfo;
  return tf.pad(x, [
    [0, 0],
    [top, Math.max(bottom, 0)],
    [left, Math.max(right, 0)],
    [0, 0],
  ]);
}

export function conv2dBackpropFilter({ inputs, attrs }: KernelArgs): tf.TensorInfo {
  const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = convInfoOf(input(inputs, 'x').shape, a.filterShape, a);
  const [kh, kw, ci, co] = a.filterShape;
  return tf.tidy(() => {
    const x = asTensor<tf.Rank.R4>(input(inputs, 'x'));
    const dy = asTensor<tf.Rank.R4>(input(inputs, 'dy'));
    if (
      kh === 1 &&
      kw === 1 &&
      info.strideHeight === 1 &&
      info.strideWidth === 1 &&
      info.padInfo.top === 0 &&
      info.padInfo.left === 0
    ) {
      const g = tf.matMul(tf.reshape(x, [-1, ci]), tf.reshape(dy, [-1, co]), true, false);
      return tf.reshape(g, [1, 1, ci, co]);
    }
    const xp = padAsForward(x, info);
    // dW[i,j,c,o] = Σ_{n,y,x} xp[n, y·s+i, x·s+j, c]·dy[n,y,x,o]: a valid convolution of xp (channels as batch,
    // batch as channels) with dy (as a filter) dilated by the stride.
    const xT = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D; // [ci, Hp, Wp, n]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [Ho, Wo, n, co]
    const r = tf.conv2d(xT, dyT, 1, 'valid', 'NHWC', [info.strideHeight, info.strideWidth]); // [ci, ≥kh, ≥kw, co]
    const cropped = tf.slice(r, [0, 0, 0, 0], [ci, kh, kw, co]);
    return tf.transpose(cropped, [1, 2, 0, 3]);
  });
}

export interface Im2colOptions {
  /** Rows of the reduction (images × output pixels) per matrix of the batched product. */
  splitKRows: number;
  /** Largest patch matrix built at once; larger batches are done in groups of images and summed. */
  maxPatchBytes: number;
}

const IM2COL_DEFAULTS: Im2colOptions = { splitKRows: 4096, maxPatchBytes: 256 * 2 ** 20 };

/** The largest divisor of n that is at most `limit` (at least 1). */
function largestDivisorAtMost(n: number, limit: number): number {
  for (let d = Math.max(1, Math.min(n, Math.floor(limit))); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/**
 * Filter gradient as an explicit im2col product with the reduction split across a batched matMul (for GPUs):
 * dW[(i,j,c), o] = Σ_rows P[row, (i,j,c)]·dy[row, o], rows = (n, y, x), P the shifted copies of x side by side.
 *
 * Why not the forward-convolution form (conv2dBackpropFilter) on a GPU: there the "image" is 3×3 output pixels,
 * so tfjs-webgpu's 32-row tiles are 9/32 used, and every workgroup loops over all N·H·W rows alone. Here each
 * matrix of the batched product covers `splitKRows` rows, so a large batch becomes many short workgroups that a GPU
 * runs side by side (split-K); the partial products are summed. The patch matrix holds kh·kw copies of x, so it is
 * built for groups of images of at most `maxPatchBytes` (and half the device's largest storage buffer).
 */
export function makeConv2dBackpropFilterIm2col(options: Partial<Im2colOptions> = {}) {
  const { splitKRows, maxPatchBytes } = { ...IM2COL_DEFAULTS, ...options };
  return function conv2dBackpropFilterIm2col({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
    const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
    const xInfo = input(inputs, 'x');
    const info = convInfoOf(xInfo.shape, a.filterShape, a);
    const [kh, kw, ci, co] = a.filterShape;
    const { batchSize: n, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
    const k = kh * kw * ci;
    const perImage = ho * wo;
    // Images per matrix of the batched product, and per group of patches built at once (a multiple of it).
    const chunk = largestDivisorAtMost(n, splitKRows / perImage);
    const maxBinding = (backend as { device?: { limits?: { maxStorageBufferBindingSize?: number } } }).device?.limits
      ?.maxStorageBufferBindingSize;
    const budget = Math.min(maxPatchBytes, maxBinding ? maxBinding / 2 : maxPatchBytes);
    const groupChunks = largestDivisorAtMost(n / chunk, budget / (chunk * perImage * k * 4));
    const group = chunk * groupChunks;
    return tf.tidy(() => {
      const x = asTensor<tf.Rank.R4>(xInfo);
      const dy = asTensor<tf.Rank.R4>(input(inputs, 'dy'));
      const xp = padAsForward(x, info);
      let sum: tf.Tensor2D | null = null;
      for (let n0 = 0; n0 < n; n0 += group) {
        const taps: tf.Tensor4D[] = [];
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const begin = [n0, i, j, 0];
            taps.push(
              sh === 1 && sw === 1
                ? tf.slice(xp, begin, [group, ho, wo, ci])
                : (tf.stridedSlice(
                    xp,
                    begin,
                    [n0 + group, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, ci],
                    [1, sh, sw, 1],
                  ) as tf.Tensor4D),
            );
          }
        }
        // Columns ordered (i, j, c): the filter's own layout once reshaped to [kh, kw, ci, co].
        const patches = tf.reshape(taps.length === 1 ? taps[0] : tf.concat(taps, 3), [
          groupChunks,
          chunk * perImage,
          k,
        ]);
        const dys = tf.reshape(group === n ? dy : tf.slice(dy, [n0, 0, 0, 0], [group, ho, wo, co]), [
          groupChunks,
          chunk * perImage,
          co,
        ]);
        const partial = tf.sum(tf.matMul(patches, dys, true, false), 0) as tf.Tensor2D; // [k, co]
        sum = sum ? tf.add<tf.Tensor2D>(sum, partial) : partial;
      }
      return tf.reshape(sum!, [kh, kw, ci, co]);
    });
  };
}

export function makeConv2dBackpropInput(original: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const a = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
    const filterShape = input(args.inputs, 'filter').shape as [number, number, number, number];
    const dyShape = input(args.inputs, 'dy').shape;
    const info = convInfoOf(a.inputShape, filterShape, a);
    const [kh, kw, ci, co] = filterShape;
    const [n, H, W] = a.inputShape;
    const sh = info.strideHeight;
    const sw = info.strideWidth;
    const dyH = (dyShape[1] - 1) * sh + 1;
    const dyW = (dyShape[2] - 1) * sw + 1;
    const padTop = kh - 1 - info.padInfo.top;
    const padLeft = kw - 1 - info.padInfo.left;
    const padBottom = H + kh - 1 - dyH - padTop;
    const padRight = W + kw - 1 - dyW - padLeft;
    if (padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0) return original(args);
    return tf.tidy(() => {
      const dy = asTensor<tf.Rank.R4>(input(args.inputs, 'dy'));
      const filter = asTensor<tf.Rank.R4>(input(args.inputs, 'filter'));
      if (kh === 1 && kw === 1 && sh === 1 && sw === 1) {
        const g = tf.matMul(tf.reshape(dy, [-1, co]), tf.reshape(filter, [ci, co]), false, true);
        return tf.reshape(g, [n, H, W, ci]);
      }
      const d = dilateSpatially(dy, sh, sw);
      const padded = tf.pad(d, [
        [0, 0],
        [padTop, padBottom],
        [padLeft, padRight],
        [0, 0],
      ]);
      // Flipping both spatial axes reverses the kh·kw filter taps; split + concat is ~4× faster than wasm's Reverse.
      const taps = tf.split(tf.reshape(filter, [kh * kw, ci * co]), kh * kw).reverse();
      const flipped = tf.transpose(tf.reshape(tf.concat(taps), [kh, kw, ci, co]), [0, 1, 3, 2]) as tf.Tensor4D; // [kh, kw, co, ci]
      return tf.conv2d(padded, flipped, 1, 'valid');
    });
  };
}
