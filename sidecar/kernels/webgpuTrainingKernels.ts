/**
 * Gradient kernels for the tfjs WebGPU backend.
 *
 * tfjs-webgpu 4.22's Conv2DBackpropFilter runs one GPU thread per filter element, each summing over batch × height
 * × width serially: at the cifar10 preset's batch 128 it took 1.8 s of a step's 2.6 s of GPU time on an H200
 * (bench/RESULTS.md). The filter gradient is re-expressed as a forward convolution (convGradients.ts), which tfjs
 * runs as a tiled matrix product. Its input gradient is already a tiled matrix product and stays.
 *
 * Register after '@tensorflow/tfjs-backend-webgpu' has been imported (it registers its own kernels at import) and
 * before any gradient is taken.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilter, makeConv2dBackpropInput } from './convGradients.ts';
import { replaceKernel } from './replaceKernel.ts';

const BACKEND = 'webgpu';

/** Which of tfjs-webgpu's gradient kernels to replace; DDPM_WEBGPU_KERNELS=filter,input (or "none") overrides it. */
export type WebgpuKernelChoice = 'filter' | 'input';

let registered: readonly WebgpuKernelChoice[] | null = null;

/** Replaces the chosen kernels once per process; returns what is in place. */
export function registerWebgpuTrainingKernels(choice: readonly WebgpuKernelChoice[] = webgpuKernelsFromEnv()): readonly WebgpuKernelChoice[] {
  if (registered) return registered;
  if (choice.includes('filter')) replaceKernel(BACKEND, 'Conv2DBackpropFilter', () => conv2dBackpropFilter as tf.KernelFunc);
  if (choice.includes('input')) replaceKernel(BACKEND, 'Conv2DBackpropInput', makeConv2dBackpropInput);
  registered = [...choice];
  return registered;
}

export function webgpuKernelsFromEnv(env: NodeJS.ProcessEnv = process.env): WebgpuKernelChoice[] {
  const raw = env.DDPM_WEBGPU_KERNELS;
  if (raw === undefined || raw.trim() === '') return ['filter'];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 1 && items[0] === 'none') return [];
  for (const i of items) if (i !== 'filter' && i !== 'input') throw new Error(`DDPM_WEBGPU_KERNELS: unknown kernel '${i}' (use filter, input or none)`);
  return items as WebgpuKernelChoice[];
}
