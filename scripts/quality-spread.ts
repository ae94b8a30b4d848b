/**
 * npm run quality:spread -- [--ckpt models/mnist.safetensors] [--classifier models/classifiers/mnist.safetensors]
 *                           [--data mnist] [--pool 1280] [--batch 256] [--steps 50] [--cache FILE] [--sizes 64,256,1000]
 * How much the sample-quality numbers (sidecar/quality/sampleQuality.ts) move with the draw, at each number of
 * samples N: samples a pool of images from the checkpoint (DDIM, in batches of `batch` with seeds 0, 1, …; cached in
 * `cache` so that a rerun only adds what is missing), splits it into disjoint sets of N and reports each set's
 * numbers, and the same for disjoint sets of real images from the training split (the real statistics in the
 * classifier file are the held-out split's, so these are independent of them). Prints a Markdown table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend } from '../sidecar/backend.ts';
import { openDataset } from '../sidecar/data/open.ts';
import { Rng } from '../sidecar/ddpm/rng.ts';
import { sampleImages } from '../sidecar/jobs/sample.ts';
import { disposeWeights, loadWeights } from '../sidecar/jobs/weights.ts';
import { disposeClassifier, loadClassifier } from '../sidecar/quality/classifier.ts';
import { sampleQuality, type SampleQualityReport } from '../sidecar/quality/sampleQuality.ts';
import { readAll } from '../sidecar/quality/trainClassifier.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ckpt: { type: 'string', default: 'models/mnist.safetensors' },
      classifier: { type: 'string', default: 'models/classifiers/mnist.safetensors' },
      data: { type: 'string', default: 'mnist' },
      pool: { type: 'string', default: '1280' },
      batch: { type: 'string', default: '256' },
      steps: { type: 'string', default: '50' },
      cache: { type: 'string', default: '.tmp/quality-spread-samples.f32' },
      sizes: { type: 'string', default: '64,256,1000' },
      workers: { type: 'string', default: 'auto' },
    },
  });
  const poolSize = Number(values.pool);
  const batch = Number(values.batch);
  const sizes = values.sizes.split(',').map(Number);
  const report = await initBackend('auto');
  console.error(`backend: ${report.name} (${report.device})`);
  const clf = loadClassifier(values.classifier);
  const w = loadWeights(values.ckpt, true);
  const c = w.meta.model;
  const per = c.imageSize * c.imageSize * c.channels;
  const shape = (n: number) => [n, c.imageSize, c.imageSize, c.channels] as [number, number, number, number];

  // The pool of generated images: batch k is seed k, so the cache only ever grows by whole batches.
  let pool = new Float32Array(0);
  if (fs.existsSync(values.cache)) {
    const buf = fs.readFileSync(values.cache);
    pool = new Float32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4 / (batch * per)) * batch * per);
  }
  while (pool.length / per < poolSize) {
    const seed = pool.length / per / batch;
    const t0 = Date.now();
    const r = await sampleImages(w.params, c, w.meta.schedule, {
      n: batch,
      sampler: 'ddim',
      steps: Number(values.steps),
      seed,
      workers: values.workers === 'auto' ? 'auto' : Number(values.workers),
    });
    const next = new Float32Array(pool.length + r.images.length);
    next.set(pool);
    next.set(r.images, pool.length);
    pool = next;
    fs.mkdirSync(path.dirname(values.cache), { recursive: true });
    fs.writeFileSync(values.cache, Buffer.from(pool.buffer, pool.byteOffset, pool.byteLength));
    console.error(`sampled seed ${seed}: ${batch} images in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  disposeWeights(w);
  const generated = pool.subarray(0, poolSize * per);

  // Real images: the training split in a fixed random order.
  const train = await openDataset(values.data, { imageSize: c.imageSize, channels: c.channels, split: 'train' });
  const all = await readAll(train);
  const order = Array.from({ length: train.size }, (_, i) => i);
  const rng = new Rng(12345);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const real = new Float32Array(train.size * per);
  order.forEach((src, k) => real.set(all.subarray(src * per, (src + 1) * per), k * per));

  const sets = async (images: Float32Array, total: number, n: number, max = 20) => {
    const out: SampleQualityReport[] = [];
    for (let s = 0; (s + 1) * n <= total && s < max; s++)
      out.push(await sampleQuality(images.subarray(s * n * per, (s + 1) * n * per), shape(n), clf));
    return out;
  };
  const stat = (xs: number[]) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : NaN;
    return { m, sd, min: Math.min(...xs), max: Math.max(...xs), k: xs.length };
  };
  const fmt = (xs: number[], digits: number) => {
    const s = stat(xs);
    return `${s.m.toFixed(digits)} ± ${Number.isNaN(s.sd) ? '–' : s.sd.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)}, ${s.k} sets)`;
  };
  const rows: string[] = [
    '| N | samples: Fréchet distance | real (training split): Fréchet distance | samples: confidence | samples: coverage |',
    '|---|---|---|---|---|',
  ];
  const json: unknown[] = [];
  for (const n of sizes) {
    const g = await sets(generated, poolSize, n);
    const r = await sets(real, train.size, n);
    if (g.length === 0) continue;
    rows.push(
      `| ${n} | ${fmt(
        g.map((q) => q.frechetDistance),
        2,
      )} | ${fmt(
        r.map((q) => q.frechetDistance),
        2,
      )} | ${fmt(
        g.map((q) => q.meanConfidence),
        3,
      )} | ${fmt(
        g.map((q) => q.coverage),
        1,
      )} |`,
    );
    json.push({
      n,
      generated: g.map((q) => ({ fd: q.frechetDistance, confidence: q.meanConfidence, coverage: q.coverage })),
      real: r.map((q) => ({ fd: q.frechetDistance, confidence: q.meanConfidence, coverage: q.coverage })),
    });
  }
  const whole = await sampleQuality(generated, shape(poolSize), clf);
  console.log(rows.join('\n'));
  console.log(
    `\nall ${poolSize} samples: FD ${whole.frechetDistance.toFixed(2)}, confidence ${whole.meanConfidence.toFixed(3)}, coverage ${whole.coverage}, histogram ${whole.classHistogram.map((f) => (f * 100).toFixed(1)).join(' ')}`,
  );
  fs.writeFileSync(`${values.cache}.json`, JSON.stringify({ sizes: json, whole }, null, 1));
  disposeClassifier(clf);
  tf.disposeVariables();
  await shutdownBackend();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
