/**
 * What the pickers offer from the workspace: images (interpolation), folders of images, IDX files and CIFAR-10
 * folders (training and evaluation data), checkpoints. Quick picks of these work wherever VS Code runs (the desktop,
 * code-server, the web, remote), where a file dialog may pick one file only or show the remote file system bare.
 *
 * No `vscode` here: the commands list the files (workspace.findFiles), this sorts them into candidates, and the unit
 * tests check it on plain paths.
 */
import path from 'node:path';

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp'] as const;
const IMAGE = /\.(png|jpe?g|webp)$/i;

/** A glob of the images (findFiles matches case-sensitively on some systems: both cases). */
export const IMAGE_GLOB = `**/*.{${IMAGE_EXTENSIONS.flatMap((e) => [e, e.toUpperCase()]).join(',')}}`;
/** Folders no data or checkpoint lives in. */
export const EXCLUDE_GLOB = '{**/node_modules/**,**/.git/**}';

export function isImage(file: string): boolean {
  return IMAGE.test(file);
}

/** The images of an explorer selection (the right-clicked file alone when there is no multi-selection). */
export function selectedImages(clicked: string | undefined, selected: readonly string[] | undefined): string[] {
  const all = selected?.length ? selected : clicked ? [clicked] : [];
  return all.filter(isImage);
}

export interface Candidate {
  /** Absolute path. */
  file: string;
  label: string;
  /** Where it is, relative to the workspace folder (and, for data folders, how much it holds). */
  description: string;
}

/** "digit-2" before "digit-10": names compared with their numbers as numbers. */
const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

const relDir = (root: string, file: string) => {
  const rel = path.relative(root, path.dirname(file));
  return rel === '' ? '.' : rel.split(path.sep).join('/');
};

/** Workspace images, folder by folder, names in natural order; the label is the file name. */
export function imageCandidates(root: string, files: readonly string[]): Candidate[] {
  return files
    .filter(isImage)
    .map((file) => ({ file, label: path.basename(file), description: relDir(root, file) }))
    .sort((a, b) => natural.compare(a.description, b.description) || natural.compare(a.label, b.label));
}

/**
 * Folders that hold images (the image-folder loader reads sub-folders too, so each folder counts the images below
 * it): the folders with the most images first, then by path. `capped`: the listing stopped at its limit, so the counts
 * are lower bounds.
 */
export function imageFolderCandidates(root: string, files: readonly string[], capped = false): Candidate[] {
  const counts = new Map<string, number>();
  for (const f of files) {
    if (!isImage(f)) continue;
    for (let dir = path.dirname(f); ; dir = path.dirname(dir)) {
      if (path.relative(root, dir).startsWith('..')) break;
      counts.set(dir, (counts.get(dir) ?? 0) + 1);
      if (dir === root || path.dirname(dir) === dir) break;
    }
  }
  const plus = capped ? '+' : '';
  return [...counts]
    .sort(([a, n], [b, m]) => m - n || natural.compare(a, b))
    .map(([dir, n]) => ({
      file: dir,
      label: dir === root ? path.basename(root) || dir : path.relative(root, dir).split(path.sep).join('/'),
      description: `${n.toLocaleString('en')}${plus} image${n === 1 && !capped ? '' : 's'}`,
    }));
}

/** IDX image files (MNIST's format: train-images-idx3-ubyte[.gz]); training files first. */
export function idxCandidates(root: string, files: readonly string[]): Candidate[] {
  const rank = (f: string) => (/^train/i.test(path.basename(f)) ? 0 : /^t10k/i.test(path.basename(f)) ? 2 : 1);
  return files
    .filter((f) => /idx3-ubyte(\.gz)?$/i.test(f))
    .sort((a, b) => rank(a) - rank(b) || natural.compare(a, b))
    .map((file) => ({ file, label: path.basename(file), description: relDir(root, file) }));
}

/** CIFAR-10 binary folders: those holding data_batch_1.bin (training) or test_batch.bin (evaluation). */
export function cifarCandidates(root: string, files: readonly string[]): Candidate[] {
  const dirs = new Map<string, Set<string>>();
  for (const f of files) {
    const name = path.basename(f);
    if (!/^(data_batch_\d|test_batch)\.bin$/.test(name)) continue;
    const d = path.dirname(f);
    dirs.set(d, (dirs.get(d) ?? new Set()).add(name));
  }
  return [...dirs]
    .sort(([a], [b]) => natural.compare(a, b))
    .map(([dir, names]) => {
      const batches = [...names].filter((n) => n.startsWith('data_batch')).length;
      const test = names.has('test_batch.bin');
      return {
        file: dir,
        label: path.relative(root, dir).split(path.sep).join('/') || path.basename(dir),
        description: [batches ? `${batches} training batch${batches === 1 ? '' : 'es'}` : '', test ? 'test batch' : '']
          .filter(Boolean)
          .join(' + '),
      };
    });
}

/** Checkpoints of the workspace, newest first (`mtime` in ms); a run's `latest.safetensors` before its ckpt-* files. */
export function checkpointCandidates(
  root: string,
  files: readonly { file: string; mtime: number }[],
): (Candidate & { mtime: number })[] {
  const rank = (f: string) => (path.basename(f) === 'latest.safetensors' ? 0 : 1);
  return files
    .filter((f) => f.file.endsWith('.safetensors'))
    .sort((a, b) => b.mtime - a.mtime || rank(a.file) - rank(b.file) || natural.compare(a.file, b.file))
    .map(({ file, mtime }) => ({ file, mtime, label: path.basename(file), description: relDir(root, file) }));
}

/** "120 MB", "1.1 GB": decimal units, as file managers show sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1).replace(/\.0$/, '') : v.toFixed(2).replace(/\.?0+$/, '')} ${units[u]}`;
}

/**
 * diffusers model folders: those holding a `diffusion_pytorch_model*.safetensors` (or torch.save's
 * `diffusion_pytorch_model.bin`, which the import reads where there is no safetensors) with its `config.json` beside it
 * (a UNet2DModel, or a pipeline's unet/ folder). The description names the file the import reads.
 */
export function diffusersCandidates(root: string, files: readonly string[]): Candidate[] {
  const configs = new Set(files.filter((f) => path.basename(f) === 'config.json').map((f) => path.dirname(f)));
  const dirs = new Map<string, string>();
  for (const f of files) {
    const name = path.basename(f);
    if (!/^diffusion_pytorch_model(.*\.safetensors|\.bin)$/.test(name) || !configs.has(path.dirname(f))) continue;
    const seen = dirs.get(path.dirname(f));
    if (!seen || (seen.endsWith('.bin') && !name.endsWith('.bin'))) dirs.set(path.dirname(f), name);
  }
  return [...dirs]
    .sort(([a], [b]) => natural.compare(a, b))
    .map(([dir, weights]) => ({
      file: dir,
      label: path.relative(root, dir).split(path.sep).join('/') || path.basename(dir),
      description: `config.json + ${weights}`,
    }));
}
