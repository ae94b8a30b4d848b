/**
 * Gradient kernels for the tfjs WebGPU backend.
 *
 * tfjs-webgpu 4.22's Conv2DBackpropFilter runs one GPU thread per filter element, each summing over batch × height
 * × width serially: at the cifar10 preset's batch 128 it took 1.8 s of a step's 2.6 s of GPU time on an H200
 * (bench/RESULTS.md). convGradients.ts has two replacements: an im2col matrix product whose reduction over
 * batch × height × width is split across a batched matMul, so that a large batch keeps many workgroups busy, and a
 * forward convolution with batch and channels swapped, which needs no patch matrix and fewer ops. `filter` (the
 * default) takes the im2col form for convolutions of at least IM2COL_MIN_WORK multiply-adds per filter tap and the
 * convolution form below that; `filter-im2col` and `filter-conv` force one. tfjs' input gradient is already a tiled
 * matrix product and stays unless `input` is chosen.
 *
 * Register after '@tensorflow/tfjs-backend-webgpu' has been imported (it registers its own kernels at import) and
 * before any gradient is taken.
 */
import * as tf from '@tensorflow/tfjs';
import {
  conv2dBackpropFilter,
  input,
  makeConv2dBackpropFilterIm2col,
  makeConv2dBackpropInput,
  type KernelArgs,
} from './convGradients.ts';
import { replaceKernel } from './replaceKernel.ts';

const BACKEND = 'webgpu';

/**
 * Which of tfjs-webgpu's gradient kernels to replace, and how: `filter` (per shape), `filter-im2col`, `filter-conv`
 * (one form of the filter gradient for every shape), `input`. DDPM_WEBGPU_KERNELS=filter,input (or "none")
 * overrides the default.
 */
export type WebgpuKernelChoice = 'filter' | 'filter-im2col' | 'filter-conv' | 'input';
const CHOICES: readonly WebgpuKernelChoice[] = ['filter', 'filter-im2col', 'filter-conv', 'input'];
const FILTER_CHOICES: readonly WebgpuKernelChoice[] = ['filter', 'filter-im2col', 'filter-conv'];

/**
 * Rows × input channels × output channels (N·Ho·Wo·Ci·Co) from which `filter` takes the im2col form. Measured on the
 * software adapter (bench/RESULTS.md): at 6.4M–34M the im2col form was 1.2–8× faster, at 1.6M–2.1M 0.6–0.8× as fast
 * (its ~13 ops cost more than the work they save); on a GPU a large batch only adds to its lead (more split-K matrices).
 */
export const IM2COL_MIN_WORK = 4e6;

const im2col = makeConv2dBackpropFilterIm2col();

/** The filter gradient by whichever form suits the convolution's size (see IM2COL_MIN_WORK). */
export function conv2dBackpropFilterBySize(args: KernelArgs): tf.TensorInfo {
  const dy = input(args.inputs, 'dy').shape;
  const ci = input(args.inputs, 'x').shape[3];
  const work = dy[0] * dy[1] * dy[2] * dy[3] * ci;
  return work >= IM2COL_MIN_WORK ? im2col(args) : conv2dBackpropFilter(args);
}

let registered: readonly WebgpuKernelChoice[] | null = null;

/** Replaces the chosen kernels once per process; returns what is in place. */
export function registerWebgpuTrainingKernels(
  choice: readonly WebgpuKernelChoice[] = webgpuKernelsFromEnv(),
): readonly WebgpuKernelChoice[] {
  if (registered) return registered;
  const filter = choice.filter((c) => FILTER_CHOICES.includes(c));
  if (filter.length > 1) throw new Error(`choose one of ${FILTER_CHOICES.join(', ')}`);
  const kernels: Partial<Record<WebgpuKernelChoice, tf.KernelFunc>> = {
    filter: conv2dBackpropFilterBySize as tf.KernelFunc,
    'filter-im2col': im2col as tf.KernelFunc,
    'filter-conv': conv2dBackpropFilter as tf.KernelFunc,
  };
  if (filter.length === 1) replaceKernel(BACKEND, 'Conv2DBackpropFilter', () => kernels[filter[0]]!);
  if (choice.includes('input')) replaceKernel(BACKEND, 'Conv2DBackpropInput', makeConv2dBackpropInput);
  registered = [...choice];
  return registered;
}

export function webgpuKernelsFromEnv(env: NodeJS.ProcessEnv = process.env): WebgpuKernelChoice[] {
  const raw = env.DDPM_WEBGPU_KERNELS;
  if (raw === undefined || raw.trim() === '') return ['filter'];
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 1 && items[0] === 'none') return [];
  for (const i of items)
    if (!(CHOICES as readonly string[]).includes(i))
      throw new Error(
        `DDPM_WEBGPU_KERNELS: unknown kernel '${i}' (use filter, filter-im2col, filter-conv, input or none)`,
      );
  if (items.filter((i) => (FILTER_CHOICES as readonly string[]).includes(i)).length > 1)
    throw new Error(`DDPM_WEBGPU_KERNELS: choose one of ${FILTER_CHOICES.join(', ')}`);
  return items as WebgpuKernelChoice[];
}
