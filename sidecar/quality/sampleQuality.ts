/**
 * How good a set of generated images is, judged by the dataset's classifier (classifier.ts):
 *   - mean confidence: the mean over images of the classifier's top softmax probability (sharp, recognisable images
 *     score near the held-out images' value; blurry or ambiguous ones lower);
 *   - class histogram: the fraction of images assigned to each class (argmax);
 *   - coverage: how many classes get at least COVERAGE_SHARE_OF_UNIFORM of a uniform share (0.3 / K, 3 % for
 *     10 classes): a model that has dropped a class (mode collapse) loses one;
 *   - Fréchet distance between the Gaussians fitted to the generated and the real (held-out) images' penultimate
 *     features: an FID for digits. It is biased upwards for small N (see models/README.md for its spread at 64, 256
 *     and 1,000 samples), so only distances at the same N compare.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { QualityResult } from '../protocol.ts';
import { classifyImages, type Classifier } from './classifier.ts';
import { featureStats, frechetDistance } from './frechet.ts';

/** A class is covered when it gets at least this fraction of the uniform share 1/K of the images. */
export const COVERAGE_SHARE_OF_UNIFORM = 0.3;

/** The classifier's judgement of a set of images: ddpm/evaluate's quality result less how they were sampled. */
export type SampleQualityReport = Omit<QualityResult, 'sampling' | 'seconds'>;

/**
 * Brings NHWC images to the classifier's size: the same size as is, larger ones centre-cropped (a 32×32 model of
 * MNIST pads the 28×28 digits with background, which the crop removes). Smaller sizes and other channel counts are
 * refused.
 */
export function fitToClassifier(
  images: Float32Array,
  shape: readonly [number, number, number, number],
  c: Classifier,
): Float32Array {
  const [n, h, w, ch] = shape;
  const size = c.config.imageSize;
  if (images.length !== n * h * w * ch) throw new Error(`images hold ${images.length} values, not ${shape.join('×')}`);
  if (ch !== c.config.channels)
    throw new Error(`the classifier takes ${c.config.channels}-channel images, these have ${ch} channels`);
  if (h < size || w < size)
    throw new Error(`the classifier takes ${size}×${size} images; ${h}×${w} images are too small`);
  if (h === size && w === size) return images;
  const top = Math.floor((h - size) / 2);
  const left = Math.floor((w - size) / 2);
  const out = new Float32Array(n * size * size * ch);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < size; y++) {
      const src = ((i * h + y + top) * w + left) * ch;
      out.set(images.subarray(src, src + size * ch), (i * size + y) * size * ch);
    }
  return out;
}

/**
 * The sample-quality numbers for `n` images (NHWC host array in [−1, 1], shape [n, H, W, C]). With `labels` (the
 * class each image was sampled for, −1 for none), also the fraction of the labelled images classified as their label.
 */
export async function sampleQuality(
  images: Float32Array,
  shape: readonly [number, number, number, number],
  classifier: Classifier,
  labels?: readonly number[],
): Promise<SampleQualityReport> {
  const n = shape[0];
  if (n < 2) throw new Error(`the sample quality needs at least 2 images, got ${n}`);
  const c = classifier.config;
  const k = c.numClasses;
  const { features, probs } = await classifyImages(classifier.params, c, fitToClassifier(images, shape, classifier), n);
  const counts = new Array<number>(k).fill(0);
  let confidence = 0;
  let labelled = 0;
  let agree = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
    counts[best]++;
    confidence += probs[i * k + best];
    if (labels && labels[i] >= 0) {
      labelled++;
      if (labels[i] === best) agree++;
    }
  }
  const classHistogram = counts.map((x) => x / n);
  const coverageThreshold = COVERAGE_SHARE_OF_UNIFORM / k;
  return {
    n,
    classifier: {
      file: classifier.file,
      source: classifier.meta.data.source,
      heldOutAccuracy: classifier.meta.heldOutAccuracy,
    },
    classes: [...classifier.classes],
    meanConfidence: confidence / n,
    classHistogram,
    // A small tolerance so that exactly 3 of 100 counts as 3 %.
    coverage: classHistogram.filter((f) => f >= coverageThreshold - 1e-12).length,
    coverageThreshold,
    frechetDistance: frechetDistance(featureStats(features, n, c.features), classifier.stats),
    realImages: classifier.stats.n,
    ...(labelled ? { classAgreement: agree / labelled } : {}),
  };
}

/** The shipped classifiers, by the data they judge: file name in models/classifiers/. */
export const SHIPPED_CLASSIFIERS = { mnist: 'mnist.safetensors', 'fashion-mnist': 'fashion-mnist.safetensors' };

/**
 * The folder of the shipped classifiers: DDPM_CLASSIFIERS_DIR if set, else models/classifiers/ in the first folder
 * above this file that has one (the repository from the sources, the extension's root from dist/).
 */
export function classifiersDir(): string {
  const env = process.env.DDPM_CLASSIFIERS_DIR;
  if (env) return env;
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'models', 'classifiers');
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`the shipped classifiers (models/classifiers/) were not found above ${__dirname}`);
}

/**
 * Which shipped classifier judges samples of a model trained on `source` (a checkpoint's data source): 'mnist' →
 * the MNIST classifier, an IDX file whose path names Fashion-MNIST → the Fashion-MNIST one; any other data has none.
 */
export function classifierForSource(source: string | undefined): {
  dataset: keyof typeof SHIPPED_CLASSIFIERS;
  file: string;
} {
  const pick = (dataset: keyof typeof SHIPPED_CLASSIFIERS) => ({
    dataset,
    file: path.join(classifiersDir(), SHIPPED_CLASSIFIERS[dataset]),
  });
  if (source === 'mnist') return pick('mnist');
  if (source?.startsWith('idx:') && /fashion/i.test(source)) return pick('fashion-mnist');
  throw new Error(
    `no sample-quality classifier exists for ${source ? `the data '${source}'` : 'a checkpoint that does not name its data'}: ` +
      'classifiers are shipped for mnist and Fashion-MNIST (idx:…fashion…) only',
  );
}
