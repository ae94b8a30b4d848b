/** Opens a data source named as on the command line: 'mnist', 'idx:PATH', 'cifar10:PATH', 'folder:PATH'. */
import type { Dataset } from './dataset.ts';
import { mnistDataset } from './mnist.ts';

export interface OpenOptions {
  imageSize: number;
  channels: number;
}

/**
 * The image size and channels a model should have for this data: digit datasets fix them (MNIST: 28×28×1, or the
 * preset's larger size with padding); image folders are resized to the preset's size.
 */
export function modelShapeFor(source: string, preset: { imageSize: number; channels: number }): { imageSize: number; channels: number } {
  const [kind] = source.split(':', 1);
  if (kind === 'mnist') return { imageSize: Math.max(28, preset.imageSize), channels: 1 };
  return { imageSize: preset.imageSize, channels: preset.channels };
}

export async function openDataset(source: string, o: OpenOptions): Promise<Dataset> {
  const [kind] = source.split(':', 1);
  switch (kind) {
    case 'mnist': {
      if (o.channels !== 1) throw new Error(`MNIST digits are grayscale; the model has ${o.channels} channels`);
      return mnistDataset({ imageSize: o.imageSize });
    }
    case 'idx':
    case 'cifar10':
    case 'folder':
      throw new Error(`data source '${kind}' is not available in this build yet; use 'mnist'`);
    default:
      throw new Error(`unknown data source '${source}': use mnist, idx:PATH, cifar10:PATH or folder:PATH`);
  }
}
