// The backend-independent forms of the conv filter gradient (sidecar/kernels/convGradients.ts), run on tfjs-cpu
// against tfjs-cpu's own Conv2DBackpropFilter: the im2col split-K form with its defaults and with limits small
// enough that every case is split into several matrices and several groups of images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { conv2dBackpropFilter, makeConv2dBackpropFilterIm2col } from '../../sidecar/kernels/convGradients.ts';
import { CONV_GRAD_CASES, maxRelDiff, mk, randn } from '../helpers/tensors.ts';

const EXTRA_CASES: typeof CONV_GRAD_CASES = [
  // A prime batch (chunks of one image), and a batch that splits into two groups of two chunks of two images.
  { x: [7, 6, 5, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { x: [8, 4, 4, 2], f: [3, 3, 2, 3], stride: 1, pad: 'valid' },
  { x: [4, 9, 9, 2], f: [3, 3, 2, 2], stride: 2, pad: 'same' },
];

const forms: [string, tf.KernelFunc][] = [
  ['im2col, defaults', makeConv2dBackpropFilterIm2col() as tf.KernelFunc],
  [
    'im2col, 2-row matrices and 64-byte patch groups',
    makeConv2dBackpropFilterIm2col({ splitKRows: 2, maxPatchBytes: 64 }) as tf.KernelFunc,
  ],
  [
    'im2col, 8-row matrices and 1200-byte patch groups',
    makeConv2dBackpropFilterIm2col({ splitKRows: 8, maxPatchBytes: 1200 }) as tf.KernelFunc,
  ],
  [
    'im2col, 8-row matrices in one group',
    makeConv2dBackpropFilterIm2col({ splitKRows: 8, maxPatchBytes: 2 ** 30 }) as tf.KernelFunc,
  ],
  ['forward-conv form', conv2dBackpropFilter as tf.KernelFunc],
];

test('filter gradient forms match tfjs-cpu Conv2DBackpropFilter (same/valid, strides 1 and 2, 1×1, odd sizes, prime batch)', async () => {
  await tf.setBackend('cpu');
  const rng = new Rng(5);
  for (const c of [...CONV_GRAD_CASES, ...EXTRA_CASES]) {
    const x = mk(randn(c.x, rng)) as tf.Tensor4D;
    const attrs = {
      strides: [c.stride, c.stride],
      pad: c.pad,
      dataFormat: 'NHWC',
      dilations: [1, 1],
      filterShape: c.f,
    };
    const y = tf.conv2d(x, tf.zeros(c.f as [number, number, number, number]), c.stride, c.pad);
    const dy = mk(randn(y.shape, rng));
    const ref = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor;
    for (const [name, kernel] of forms) {
      const before = tf.memory().numTensors;
      const got = kernel({
        inputs: { x, dy },
        attrs: attrs as unknown as tf.NamedAttrMap,
        backend: tf.backend(),
      }) as tf.Tensor;
      assert.deepEqual(got.shape, c.f, `${name} ${JSON.stringify(c)}`);
      const err = await maxRelDiff(got, ref);
      assert.ok(err < 1e-5, `${name} ${JSON.stringify(c)}: ${err}`);
      got.dispose();
      assert.equal(tf.memory().numTensors, before, `${name} leaked tensors`);
    }
    tf.dispose([x, y, dy, ref]);
  }
});

test('im2col filter gradient: the reduction is split into a batched product, in groups of images that fit the patch budget', async () => {
  await tf.setBackend('cpu');
  // x [8, 4, 4, 2], 3×3 valid: 4 output pixels per image, 18 patch columns (288 bytes per image). 8-row matrices
  // hold 2 images; a 1200-byte budget takes 2 such matrices (1152 bytes) per group: 2 groups, each one product of 2.
  const x = tf.randomNormal([8, 4, 4, 2]) as tf.Tensor4D;
  const dy = tf.randomNormal([8, 2, 2, 3]);
  const kernel = makeConv2dBackpropFilterIm2col({ splitKRows: 8, maxPatchBytes: 1200 }) as tf.KernelFunc;
  const attrs = {
    strides: [1, 1],
    pad: 'valid',
    dataFormat: 'NHWC',
    dilations: [1, 1],
    filterShape: [3, 3, 2, 3],
  } as unknown as tf.NamedAttrMap;
  const info = await tf.profile(() => kernel({ inputs: { x, dy }, attrs, backend: tf.backend() }) as tf.Tensor);
  const products = info.kernels.filter((k) => k.name === 'BatchMatMul').map((k) => k.inputShapes);
  assert.deepEqual(products, [
    [
      [2, 8, 18],
      [2, 8, 3],
    ],
    [
      [2, 8, 18],
      [2, 8, 3],
    ],
  ]);
  tf.dispose(info.result as tf.Tensor);
  tf.dispose([x, dy]);
});
