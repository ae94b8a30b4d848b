/**
 * Trains the quality classifier (classifier.ts) on a labelled data source with tfjs: softmax cross-entropy, Adam
 * with a cosine learning-rate decay, dropout on the penultimate features and random shifts of up to ±`shift` pixels
 * as augmentation; then measures its top-1 accuracy on the held-out split with the weights as they will be stored,
 * and fits the real feature statistics (mean, covariance) on the same held-out images. Every op runs in tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';
import { float16ToFloat32, float32ToFloat16 } from '../checkpoint/float16.ts';
import { EpochOrder, type Dataset } from '../data/dataset.ts';
import { Rng } from '../ddpm/rng.ts';
import {
  CLASSIFIER_FORMAT,
  classifierForward,
  classifierParamSpecs,
  classifyImages,
  defaultClassifierConfig,
  initClassifierParams,
  type ClassifierConfig,
  type ClassifierMeta,
} from './classifier.ts';
import { featureStats, type GaussianStats } from './frechet.ts';

export interface ClassifierRecipe {
  steps: number;
  batch: number;
  lr: number;
  /** Linear warm-up steps before the cosine decay to 0. */
  warmup: number;
  dropout: number;
  /** Largest random shift in pixels (0: no augmentation). */
  shift: number;
  seed: number;
  weightsDtype: 'F32' | 'F16';
}

export const DEFAULT_RECIPE: ClassifierRecipe = {
  steps: 2000,
  batch: 64,
  lr: 2e-3,
  warmup: 100,
  dropout: 0.3,
  shift: 2,
  seed: 0,
  weightsDtype: 'F16',
};

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  elapsedSeconds: number;
}

export interface TrainedClassifier {
  meta: ClassifierMeta;
  params: Map<string, Float32Array>;
  stats: GaussianStats;
}

/** All images of a dataset as one host array (read in chunks). */
export async function readAll(ds: Dataset, chunk = 2000): Promise<Float32Array> {
  const per = ds.imageSize * ds.imageSize * ds.channels;
  const out = new Float32Array(ds.size * per);
  for (let s = 0; s < ds.size; s += chunk) {
    const idx = Array.from({ length: Math.min(chunk, ds.size - s) }, (_, i) => s + i);
    out.set(await ds.read(idx), s * per);
  }
  return out;
}

/** The learning rate at `step` (0-based): linear warm-up, then a half cosine down to 0 at `steps`. */
export function learningRate(r: Pick<ClassifierRecipe, 'lr' | 'warmup' | 'steps'>, step: number): number {
  if (step < r.warmup) return (r.lr * (step + 1)) / r.warmup;
  const p = (step - r.warmup) / Math.max(1, r.steps - r.warmup);
  return r.lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, p)));
}

/** Copies image `src` shifted by (dy, dx) pixels into `out` at `offset`; uncovered pixels get the background −1. */
function shifted(
  src: Float32Array,
  size: number,
  ch: number,
  dy: number,
  dx: number,
  out: Float32Array,
  offset: number,
) {
  for (let y = 0; y < size; y++) {
    const sy = y - dy;
    for (let x = 0; x < size; x++) {
      const sx = x - dx;
      const inside = sy >= 0 && sy < size && sx >= 0 && sx < size;
      for (let c = 0; c < ch; c++) out[offset + (y * size + x) * ch + c] = inside ? src[(sy * size + sx) * ch + c] : -1;
    }
  }
}

/** float32 → float16 → float32, as a weights file stored in F16 gives them back. */
export function roundToF16(data: Float32Array): Float32Array {
  return data.map((v) => float16ToFloat32(float32ToFloat16(v)));
}

export async function trainClassifier(
  train: Dataset,
  test: Dataset,
  recipe: ClassifierRecipe,
  o: { backend: string; onProgress?: (p: TrainProgress) => void; progressEvery?: number } = { backend: 'unknown' },
): Promise<TrainedClassifier> {
  if (!train.labels || !train.classes) throw new Error(`${train.source} has no class labels to train a classifier on`);
  if (!test.labels) throw new Error(`${test.source}: the held-out images have no labels`);
  const config: ClassifierConfig = defaultClassifierConfig(train.imageSize, train.channels, train.classes.length);
  const size = config.imageSize;
  const per = size * size * config.channels;
  const started = performance.now();

  const images = await readAll(train);
  const labels = train.labels(Array.from({ length: train.size }, (_, i) => i));
  const names = classifierParamSpecs(config).map((s) => s.name);
  const init = initClassifierParams(config, recipe.seed);
  // Created in tf.tidy so that the initial values are disposed (a variable keeps a copy).
  let vars = new Map<string, tf.Variable>();
  let m = new Map<string, tf.Variable>();
  let v = new Map<string, tf.Variable>();
  tf.tidy(() => {
    vars = new Map(names.map((n) => [n, tf.variable(tf.tensor(init.get(n)!, shapeOf(config, n)), true, `clf.${n}`)]));
    m = new Map(names.map((n) => [n, tf.variable(tf.zerosLike(vars.get(n)!), false)]));
    v = new Map(names.map((n) => [n, tf.variable(tf.zerosLike(vars.get(n)!), false)]));
  });
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];

  const order = new EpochOrder(train.size, recipe.seed);
  const rng = new Rng(recipe.seed ^ 0x5eed);
  const batchX = new Float32Array(recipe.batch * per);
  const onehot = new Float32Array(recipe.batch * config.numClasses);
  const mask = new Float32Array(recipe.batch * config.features);
  let lossSum = 0;
  let lossCount = 0;
  try {
    for (let step = 0; step < recipe.steps; step++) {
      const idx = order.batch(step, recipe.batch);
      onehot.fill(0);
      idx.forEach((i, b) => {
        const dy = recipe.shift ? rng.int(2 * recipe.shift + 1) - recipe.shift : 0;
        const dx = recipe.shift ? rng.int(2 * recipe.shift + 1) - recipe.shift : 0;
        shifted(images.subarray(i * per, (i + 1) * per), size, config.channels, dy, dx, batchX, b * per);
        onehot[b * config.numClasses + labels[i]] = 1;
      });
      if (recipe.dropout > 0) rng.fillDropoutMask(mask, recipe.dropout);
      else mask.fill(1);
      const lr = learningRate(recipe, step);
      const t = step + 1;
      const lossT = tf.tidy(() => {
        const x = tf.tensor4d(batchX, [recipe.batch, size, size, config.channels]);
        const y = tf.tensor2d(onehot, [recipe.batch, config.numClasses]);
        const mk = tf.tensor2d(mask, [recipe.batch, config.features]);
        const { value, grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, classifierForward(vars, config, x, mk).logits) as tf.Scalar,
          names.map((n) => vars.get(n)!),
        );
        // Adam (Kingma & Ba 2015) with bias correction folded into the step size.
        const stepSize = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
        for (const n of names) {
          const g = grads[`clf.${n}`];
          const mn = tf.add(tf.mul(m.get(n)!, beta1), tf.mul(g, 1 - beta1));
          const vn = tf.add(tf.mul(v.get(n)!, beta2), tf.mul(tf.square(g), 1 - beta2));
          m.get(n)!.assign(mn);
          v.get(n)!.assign(vn);
          vars.get(n)!.assign(tf.sub(vars.get(n)!, tf.mul(tf.div(mn, tf.add(tf.sqrt(vn), eps)), stepSize)));
        }
        return value;
      });
      lossSum += (await lossT.data())[0];
      lossT.dispose();
      lossCount++;
      const every = o.progressEvery ?? 100;
      if (o.onProgress && ((step + 1) % every === 0 || step + 1 === recipe.steps)) {
        o.onProgress({
          step: step + 1,
          steps: recipe.steps,
          loss: lossSum / lossCount,
          lr,
          elapsedSeconds: (performance.now() - started) / 1000,
        });
        lossSum = 0;
        lossCount = 0;
      }
    }
    const wallSeconds = (performance.now() - started) / 1000;
    const params = new Map<string, Float32Array>();
    for (const n of names) {
      const data = (await vars.get(n)!.data()) as Float32Array;
      params.set(n, recipe.weightsDtype === 'F16' ? roundToF16(data) : Float32Array.from(data));
    }
    const { accuracy, stats } = await evaluateHeldOut(params, config, test);
    const meta: ClassifierMeta = {
      format: CLASSIFIER_FORMAT,
      config,
      data: { source: train.source, classes: [...train.classes], trainImages: train.size, heldOutImages: test.size },
      recipe: {
        optimizer: 'adam',
        lr: recipe.lr,
        lrSchedule: `linear warm-up ${recipe.warmup} steps, cosine decay to 0`,
        batch: recipe.batch,
        steps: recipe.steps,
        epochs: Number(((recipe.steps * recipe.batch) / train.size).toFixed(2)),
        dropout: recipe.dropout,
        augment: recipe.shift ? `random shifts of up to ±${recipe.shift} px` : 'none',
        seed: recipe.seed,
      },
      backend: o.backend,
      wallSeconds: Math.round(wallSeconds),
      heldOutAccuracy: accuracy,
      stats: { split: 'test', images: test.size },
      weightsDtype: recipe.weightsDtype,
      created: new Date().toISOString(),
    };
    return { meta, params, stats };
  } finally {
    tf.dispose([...vars.values(), ...m.values(), ...v.values()]);
  }
}

function shapeOf(c: ClassifierConfig, name: string): number[] {
  return classifierParamSpecs(c).find((s) => s.name === name)!.shape;
}

/** Top-1 accuracy and the penultimate features' statistics over a labelled held-out dataset. */
export async function evaluateHeldOut(
  weights: ReadonlyMap<string, Float32Array>,
  config: ClassifierConfig,
  test: Dataset,
): Promise<{ accuracy: number; stats: GaussianStats }> {
  if (!test.labels) throw new Error(`${test.source}: the held-out images have no labels`);
  const params = new Map([...weights].map(([n, d]) => [n, tf.tensor(d, shapeOf(config, n))]));
  try {
    const images = await readAll(test);
    const { features, probs } = await classifyImages(params, config, images, test.size);
    const labels = test.labels(Array.from({ length: test.size }, (_, i) => i));
    const k = config.numClasses;
    let correct = 0;
    for (let i = 0; i < test.size; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
      if (best === labels[i]) correct++;
    }
    return { accuracy: correct / test.size, stats: featureStats(features, test.size, config.features) };
  } finally {
    tf.dispose([...params.values()]);
  }
}
