/**
 * What every training data source provides: a fixed number of images of one size and channel count, read by index
 * into NHWC float32 in [−1, 1] (the paper scales pixels from {0..255} to [−1, 1], §4).
 */
import { Rng } from '../ddpm/rng.ts';

export interface Dataset {
  /** How the run refers to it: 'mnist', 'idx:/path/file', ... (stored in checkpoints). */
  readonly source: string;
  readonly size: number;
  readonly imageSize: number;
  readonly channels: number;
  /** Images at these indices, NHWC, values in [−1, 1]. */
  read(indices: readonly number[]): Promise<Float32Array>;
  /** Files or records that were skipped while opening (unreadable, wrong format), with the reason for the first few. */
  readonly skipped?: { count: number; examples: string[] };
  /**
   * Where the source has class labels (MNIST digits, an IDX labels file beside the images, CIFAR-10, a folder of
   * class sub-folders): the class names, in label order, and each image's label.
   */
  readonly classes?: readonly string[];
  labels?(indices: readonly number[]): Int32Array;
}

/** Which part of a source: the images a model trains on, or those held out to evaluate it. */
export type Split = 'train' | 'test';

/** Labels of `indices` from a label array, range-checked like the images. */
export function pickLabels(all: ArrayLike<number>, indices: readonly number[]): Int32Array {
  const out = new Int32Array(indices.length);
  indices.forEach((i, k) => {
    if (!Number.isInteger(i) || i < 0 || i >= all.length)
      throw new Error(`index ${i} is out of range 0..${all.length - 1}`);
    out[k] = all[i];
  });
  return out;
}

/**
 * The order in which a run visits the data: epoch e is a permutation drawn from (seed, e), and step k takes the next
 * `batch` indices of the concatenated epochs. The order is a pure function of (seed, step), so a resumed run sees
 * exactly the batches the uninterrupted run would have seen without storing any generator state.
 */
export class EpochOrder {
  private cache = new Map<number, Uint32Array>();

  constructor(
    readonly size: number,
    readonly seed: number,
  ) {
    if (!Number.isInteger(size) || size <= 0) throw new Error('the dataset is empty');
  }

  private permutation(epoch: number): Uint32Array {
    let p = this.cache.get(epoch);
    if (p) return p;
    const rng = new Rng([
      ((this.seed >>> 0) ^ 0x9e3779b9) >>> 0,
      epoch >>> 0,
      Math.floor(epoch / 2 ** 32) >>> 0,
      0x6d2b79f5,
    ]);
    p = new Uint32Array(this.size);
    for (let i = 0; i < this.size; i++) p[i] = i;
    for (let i = this.size - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    if (this.cache.size > 2) this.cache.delete(Math.min(...this.cache.keys()));
    this.cache.set(epoch, p);
    return p;
  }

  /** The indices of the batch of training step `step` (0-based). */
  batch(step: number, batchSize: number): number[] {
    const out: number[] = [];
    let pos = step * batchSize;
    while (out.length < batchSize) {
      const epoch = Math.floor(pos / this.size);
      out.push(this.permutation(epoch)[pos - epoch * this.size]);
      pos++;
    }
    return out;
  }
}
