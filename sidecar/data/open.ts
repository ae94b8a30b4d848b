/**
 * Opens a data source named as on the command line: 'mnist', 'idx:PATH', 'cifar10:PATH', 'folder:PATH'.
 * The requested size and channels are the model's wish; digit datasets keep at least their native 28×28 and are
 * grayscale, CIFAR-10 is 32×32, and folders are resized to the requested size. The dataset says what it delivers.
 */
import type { Dataset, Split } from './dataset.ts';
import { mnistDataset } from './mnist.ts';
import { idxDataset } from './idx.ts';
import { cifarDataset } from './cifar.ts';
import { imageFolderDataset } from './imageFolder.ts';

export interface OpenOptions {
  imageSize: number;
  channels: number;
  /**
   * The images to train on (default) or those held out to evaluate on: the last tenth of each MNIST digit, the t10k-
   * file beside an IDX file, CIFAR-10's test_batch.bin. A folder has no held-out part: its test split is refused.
   */
  split?: Split;
}

export async function openDataset(source: string, o: OpenOptions): Promise<Dataset> {
  const colon = source.indexOf(':');
  const kind = colon < 0 ? source : source.slice(0, colon);
  const arg = colon < 0 ? '' : source.slice(colon + 1);
  const needArg = () => {
    if (!arg) throw new Error(`data source '${kind}' needs a path: ${kind}:PATH`);
    return arg;
  };
  switch (kind) {
    case 'mnist':
      return mnistDataset({ imageSize: o.imageSize, split: o.split });
    case 'idx':
      return idxDataset(needArg(), o.imageSize, o.split);
    case 'cifar10':
      return cifarDataset(needArg(), o.channels, o.split);
    case 'folder':
      if (o.split === 'test')
        throw new Error(`${source}: a folder has no held-out images; use the same folder or another one`);
      return imageFolderDataset(needArg(), o.imageSize, o.channels as 1 | 3);
    default:
      throw new Error(`unknown data source '${source}': use mnist, idx:PATH, cifar10:PATH or folder:PATH`);
  }
}
