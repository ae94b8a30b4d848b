/**
 * A folder of images (PNG, JPEG, WebP; searched recursively), decoded with sharp and resized/centre-cropped to the
 * model's size, converted to its channels (grayscale ↔ RGB; transparency composited over black).
 *
 * Files that are not images, or whose header cannot be read, are skipped when the folder is opened; a file that
 * fails to decode later (e.g. truncated after a valid header) is skipped when met, replaced by the next readable
 * file so that batches keep their size. Both are counted in `skipped`. Images are decoded on demand and a bounded
 * cache keeps recently used ones, so folders larger than memory stream from disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { pickLabels, type Dataset } from './dataset.ts';
import { loadImage } from '../image/png.ts';

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);
const CACHE_BYTES = 256 * 2 ** 20;
const MAX_EXAMPLES = 5;

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable subfolder: nothing to take from it
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(root);
  return out;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i]);
      }
    }),
  );
  return out;
}

export async function imageFolderDataset(root: string, imageSize: number, channels: 1 | 3): Promise<Dataset> {
  if (!fs.existsSync(root)) throw new Error(`${root}: no such folder`);
  if (!fs.statSync(root).isDirectory()) throw new Error(`${root} is a file; folder: takes a folder of images`);
  const skipped = { count: 0, examples: [] as string[] };
  const skip = (file: string, why: string) => {
    skipped.count++;
    if (skipped.examples.length < MAX_EXAMPLES) skipped.examples.push(`${path.relative(root, file)} (${why})`);
  };
  const candidates: string[] = [];
  for (const f of listFiles(root)) {
    if (EXTENSIONS.has(path.extname(f).toLowerCase())) candidates.push(f);
    else skip(f, 'not an image');
  }
  const ok = await mapLimit(candidates, 8, async (f) => {
    try {
      const m = await sharp(f).metadata();
      if (!m.width || !m.height) throw new Error('no size');
      return true;
    } catch (e) {
      skip(f, `unreadable: ${(e as Error).message.split('\n')[0]}`);
      return false;
    }
  });
  const files = candidates.filter((_, i) => ok[i]);
  if (files.length === 0) {
    throw new Error(
      `${root}: no readable images (PNG, JPEG or WebP) found${skipped.count ? `; skipped ${skipped.count} file(s), e.g. ${skipped.examples.join('; ')}` : ''}`,
    );
  }
  const bad = new Set<number>();
  const cache = new Map<number, Float32Array>();
  const per = imageSize * imageSize * channels;
  const maxCached = Math.max(64, Math.floor(CACHE_BYTES / (per * 4)));
  const decode = async (i: number): Promise<Float32Array> => {
    // A file that fails to decode is skipped for good; the next readable one takes its place.
    for (let k = 0; k < files.length; k++) {
      const j = (i + k) % files.length;
      if (bad.has(j)) continue;
      const hit = cache.get(j);
      if (hit) {
        cache.delete(j);
        cache.set(j, hit);
        return hit;
      }
      try {
        const img = await loadImage(files[j], imageSize, channels);
        cache.set(j, img);
        if (cache.size > maxCached) cache.delete(cache.keys().next().value as number);
        return img;
      } catch (e) {
        bad.add(j);
        skip(files[j], `cannot be decoded: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    throw new Error(`${root}: none of the images can be decoded`);
  };
  // Classes: one sub-folder of the root per class when every image sits in one (and there are at least two).
  const tops = files.map((f) => path.relative(root, f).split(path.sep));
  const classes = tops.every((t) => t.length > 1) ? [...new Set(tops.map((t) => t[0]))].sort() : [];
  const labels = classes.length >= 2 ? Int32Array.from(tops, (t) => classes.indexOf(t[0])) : null;
  return {
    source: `folder:${root}`,
    size: files.length,
    imageSize,
    channels,
    skipped,
    ...(labels ? { classes, labels: (indices: readonly number[]) => pickLabels(labels, indices) } : {}),
    async read(indices) {
      const out = new Float32Array(indices.length * per);
      const imgs = await mapLimit(indices, 4, (i) => {
        if (!Number.isInteger(i) || i < 0 || i >= files.length)
          throw new Error(`index ${i} is out of range 0..${files.length - 1}`);
        return decode(i);
      });
      imgs.forEach((img, b) => out.set(img, b * per));
      return out;
    },
  };
}
