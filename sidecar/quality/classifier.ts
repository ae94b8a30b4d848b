/**
 * The small classifier that judges generated images (an "Inception network for digits"): 3×3 convolutions with ReLU,
 * the later ones with stride 2 instead of pooling (so that training needs no pooling gradient kernels, which the
 * wasm backend lacks), a dense penultimate layer whose ReLU outputs are the features of the Fréchet distance, and a
 * linear layer to the class logits. All activations NHWC, images in [−1, 1] as the datasets deliver them.
 *
 * A classifier file is a safetensors file (sidecar/checkpoint/safetensors.ts):
 *   classifier.<param>   the weights (names: see `classifierParamSpecs`)
 *   stats.mu, stats.sigma   mean [F] and covariance [F, F] of the penultimate features over the dataset's held-out
 *                           images (the "real" statistics of the Fréchet distance), computed once at training time
 * and in `__metadata__`: `format` = "ddpm-studio-classifier/1" and `classifier` = JSON of ClassifierMeta.
 */
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../ddpm/rng.ts';
import { writeFileAtomic } from '../checkpoint/checkpoint.ts';
import {
  encodeSafetensors,
  readHeader,
  readTensorF32,
  SafetensorsError,
  type TensorToWrite,
} from '../checkpoint/safetensors.ts';
import type { GaussianStats } from './frechet.ts';

export const CLASSIFIER_FORMAT = 'ddpm-studio-classifier/1';

export interface ClassifierConfig {
  imageSize: number;
  channels: number;
  numClasses: number;
  /** 3×3 convolutions, in order ('same' padding, ReLU). */
  convs: readonly { filters: number; stride: number }[];
  /** Width of the penultimate (feature) layer. */
  features: number;
}

/**
 * The shipped classifiers' architecture (28×28×1 → 28×28×16 → 14×14×32 → 7×7×64 → 4×4×64 → 128 → 10): 192,714
 * parameters, 385 KB in float16 (the file, with the real statistics in float32: 453 KB).
 */
export function defaultClassifierConfig(imageSize = 28, channels = 1, numClasses = 10): ClassifierConfig {
  return {
    imageSize,
    channels,
    numClasses,
    convs: [
      { filters: 16, stride: 1 },
      { filters: 32, stride: 2 },
      { filters: 64, stride: 2 },
      { filters: 64, stride: 2 },
    ],
    features: 128,
  };
}

export function validateClassifierConfig(c: ClassifierConfig): ClassifierConfig {
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!c || typeof c !== 'object') throw new Error('classifier config is not an object');
  for (const k of ['imageSize', 'channels', 'numClasses', 'features'] as const)
    if (!posInt(c[k])) throw new Error(`classifier config: ${k} must be a positive integer, got ${String(c[k])}`);
  if (!Array.isArray(c.convs) || c.convs.length === 0) throw new Error('classifier config: convs must be a list');
  for (const [i, l] of c.convs.entries())
    if (!posInt(l?.filters) || !posInt(l?.stride)) throw new Error(`classifier config: convs[${i}] is invalid`);
  return c;
}

/** Spatial size after the convolutions ('same' padding: ⌈size / stride⌉ each). */
function finalSize(c: ClassifierConfig): number {
  return c.convs.reduce((s, l) => Math.ceil(s / l.stride), c.imageSize);
}

/** Every parameter's name and shape, in file order. */
export function classifierParamSpecs(c: ClassifierConfig): { name: string; shape: number[] }[] {
  const specs: { name: string; shape: number[] }[] = [];
  let cin = c.channels;
  c.convs.forEach((l, i) => {
    specs.push({ name: `conv${i}.w`, shape: [3, 3, cin, l.filters] }, { name: `conv${i}.b`, shape: [l.filters] });
    cin = l.filters;
  });
  const s = finalSize(c);
  specs.push(
    { name: 'fc.w', shape: [s * s * cin, c.features] },
    { name: 'fc.b', shape: [c.features] },
    { name: 'out.w', shape: [c.features, c.numClasses] },
    { name: 'out.b', shape: [c.numClasses] },
  );
  return specs;
}

export function classifierParamCount(c: ClassifierConfig): number {
  return classifierParamSpecs(c).reduce((a, s) => a + s.shape.reduce((p, d) => p * d, 1), 0);
}

/** He-normal weights (fan-in, for ReLU), zero biases, drawn from our seeded generator: the same on every backend. */
export function initClassifierParams(c: ClassifierConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const normal = () => {
    // Box–Muller; 1 − u keeps the logarithm finite.
    const u = 1 - rng.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.uniform());
  };
  const out = new Map<string, Float32Array>();
  for (const { name, shape } of classifierParamSpecs(c)) {
    const n = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    if (name.endsWith('.w')) {
      const fanIn = shape.slice(0, -1).reduce((a, d) => a * d, 1);
      const std = name === 'out.w' ? Math.sqrt(1 / fanIn) : Math.sqrt(2 / fanIn);
      for (let i = 0; i < n; i++) data[i] = normal() * std;
    }
    out.set(name, data);
  }
  return out;
}

export interface ClassifierOutputs {
  /** Penultimate features [B, F] (after ReLU). */
  features: tf.Tensor2D;
  /** Class logits [B, K]. */
  logits: tf.Tensor2D;
}

/**
 * The forward pass. `dropoutMask` [B, F] (inverted dropout, see Rng.fillDropoutMask) multiplies the features during
 * training; evaluation passes none. Call inside tf.tidy (or dispose the outputs).
 */
export function classifierForward(
  params: ReadonlyMap<string, tf.Tensor>,
  c: ClassifierConfig,
  x: tf.Tensor4D,
  dropoutMask?: tf.Tensor2D,
): ClassifierOutputs {
  const p = (name: string) => {
    const t = params.get(name);
    if (!t) throw new Error(`classifier parameter '${name}' is missing`);
    return t;
  };
  if (x.shape[1] !== c.imageSize || x.shape[2] !== c.imageSize || x.shape[3] !== c.channels)
    throw new Error(
      `the classifier takes ${c.imageSize}×${c.imageSize}×${c.channels} images, got ${x.shape.slice(1).join('×')}`,
    );
  let h: tf.Tensor4D = x;
  c.convs.forEach((l, i) => {
    h = tf.relu(tf.add(tf.conv2d(h, p(`conv${i}.w`) as tf.Tensor4D, l.stride, 'same'), p(`conv${i}.b`))) as tf.Tensor4D;
  });
  const flat = tf.reshape(h, [x.shape[0], -1]) as tf.Tensor2D;
  let features = tf.relu(tf.add(tf.matMul(flat, p('fc.w') as tf.Tensor2D), p('fc.b'))) as tf.Tensor2D;
  const hidden = dropoutMask ? (tf.mul(features, dropoutMask) as tf.Tensor2D) : features;
  const logits = tf.add(tf.matMul(hidden, p('out.w') as tf.Tensor2D), p('out.b')) as tf.Tensor2D;
  if (dropoutMask) features = hidden;
  return { features, logits };
}

/** How the classifier was made, stored in its file and shown in models/README.md. */
export interface ClassifierMeta {
  format: typeof CLASSIFIER_FORMAT;
  config: ClassifierConfig;
  /** The training data source ('mnist', 'idx:PATH') and its class names, in label order. */
  data: { source: string; classes: string[]; trainImages: number; heldOutImages: number };
  recipe: {
    optimizer: 'adam';
    lr: number;
    lrSchedule: string;
    batch: number;
    steps: number;
    epochs: number;
    dropout: number;
    augment: string;
    seed: number;
  };
  backend: string;
  wallSeconds: number;
  /** Top-1 accuracy on the held-out images, with the weights as stored (after float16 rounding). */
  heldOutAccuracy: number;
  /** The images that `stats.mu` / `stats.sigma` summarise. */
  stats: { split: 'test'; images: number };
  weightsDtype: 'F32' | 'F16';
  created: string;
}

export interface Classifier {
  meta: ClassifierMeta;
  config: ClassifierConfig;
  classes: readonly string[];
  params: Map<string, tf.Tensor>;
  /** The real images' feature statistics (held-out split), in float64. */
  stats: GaussianStats;
  file: string;
}

export function saveClassifier(
  file: string,
  meta: ClassifierMeta,
  params: ReadonlyMap<string, Float32Array>,
  stats: GaussianStats,
): void {
  const tensors: TensorToWrite[] = classifierParamSpecs(meta.config).map(({ name, shape }) => {
    const data = params.get(name);
    if (!data) throw new Error(`classifier parameter '${name}' is missing`);
    return { name: `classifier.${name}`, shape, data, dtype: meta.weightsDtype };
  });
  const d = stats.mu.length;
  tensors.push(
    { name: 'stats.mu', shape: [d], data: Float32Array.from(stats.mu) },
    { name: 'stats.sigma', shape: [d, d], data: Float32Array.from(stats.sigma) },
  );
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(
    file,
    encodeSafetensors(tensors, { format: CLASSIFIER_FORMAT, classifier: JSON.stringify(meta), n: String(stats.n) }),
  );
}

/** Reads a classifier file's weights and statistics (the weights as float32 tensors: dispose with disposeClassifier). */
export function loadClassifier(file: string): Classifier {
  const header = readHeader(file);
  if (header.metadata.format !== CLASSIFIER_FORMAT || header.metadata.classifier === undefined)
    throw new Error(`${file} is not a DDPM Studio classifier (no '${CLASSIFIER_FORMAT}' metadata)`);
  let meta: ClassifierMeta;
  try {
    meta = JSON.parse(header.metadata.classifier) as ClassifierMeta;
    validateClassifierConfig(meta.config);
  } catch (e) {
    throw new SafetensorsError(file, `its classifier metadata is invalid (${(e as Error).message})`);
  }
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const read = (name: string, shape: number[]) => {
    const e = byName.get(name);
    if (!e) throw new SafetensorsError(file, `tensor '${name}' is missing`);
    if (e.shape.join(',') !== shape.join(','))
      throw new SafetensorsError(file, `tensor '${name}' is [${e.shape}], expected [${shape}]`);
    return readTensorF32(header, e);
  };
  const f = meta.config.features;
  const mu = Float64Array.from(read('stats.mu', [f]));
  const sigma = Float64Array.from(read('stats.sigma', [f, f]));
  const weights = classifierParamSpecs(meta.config).map(({ name, shape }) => ({
    name,
    shape,
    data: read(`classifier.${name}`, shape),
  }));
  const params = new Map(weights.map((w) => [w.name, tf.tensor(w.data, w.shape)]));
  return {
    meta,
    config: meta.config,
    classes: meta.data.classes,
    params,
    stats: { n: meta.stats.images, mu, sigma },
    file,
  };
}

export function disposeClassifier(c: Classifier): void {
  tf.dispose([...c.params.values()]);
  c.params.clear();
}

/**
 * Runs the classifier over `n` images (NHWC host array, [−1, 1]) in batches: the penultimate features [n·F] and the
 * softmax probabilities [n·K], as host arrays.
 */
export async function classifyImages(
  params: ReadonlyMap<string, tf.Tensor>,
  c: ClassifierConfig,
  images: Float32Array,
  n: number,
  batch = 256,
): Promise<{ features: Float32Array; probs: Float32Array }> {
  const per = c.imageSize * c.imageSize * c.channels;
  if (images.length !== n * per)
    throw new Error(`expected ${n} images of ${c.imageSize}×${c.imageSize}×${c.channels}, got ${images.length} values`);
  const features = new Float32Array(n * c.features);
  const probs = new Float32Array(n * c.numClasses);
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const [f, p] = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(start * per, (start + b) * per), [b, c.imageSize, c.imageSize, c.channels]);
      const out = classifierForward(params, c, x);
      return [out.features, tf.softmax(out.logits)];
    });
    features.set(await f.data(), start * c.features);
    probs.set(await p.data(), start * c.numClasses);
    tf.dispose([f, p]);
  }
  return { features, probs };
}
