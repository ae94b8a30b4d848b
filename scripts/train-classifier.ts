/**
 * npm run train:classifier -- --data SOURCE --out FILE [--steps N] [--batch B] [--lr X] [--warmup N] [--dropout P]
 *                              [--shift PX] [--seed S] [--f32] [--backend auto]
 * Trains the sample-quality classifier (sidecar/quality/) on a labelled data source, measures its accuracy on the
 * held-out images, fits the real feature statistics on them, and writes one safetensors file with the weights, the
 * statistics and the recipe. E.g.
 *   npm run train:classifier -- --data mnist --out models/classifiers/mnist.safetensors
 *   npm run train:classifier -- --data idx:/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
 *     --out models/classifiers/fashion-mnist.safetensors --steps 4000
 */
import { parseArgs } from 'node:util';
import { initBackend, shutdownBackend, type BackendChoice } from '../sidecar/backend.ts';
import { openDataset } from '../sidecar/data/open.ts';
import { classifierParamCount, saveClassifier } from '../sidecar/quality/classifier.ts';
import { DEFAULT_RECIPE, trainClassifier } from '../sidecar/quality/trainClassifier.ts';
import fs from 'node:fs';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      dropout: { type: 'string' },
      shift: { type: 'string' },
      seed: { type: 'string' },
      f32: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'auto' },
    },
  });
  if (!values.data || !values.out) {
    console.error('usage: npm run train:classifier -- --data SOURCE --out FILE [--steps N] [--batch B] [--lr X] …');
    return 2;
  }
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const recipe = {
    steps: num(values.steps, DEFAULT_RECIPE.steps),
    batch: num(values.batch, DEFAULT_RECIPE.batch),
    lr: num(values.lr, DEFAULT_RECIPE.lr),
    warmup: num(values.warmup, DEFAULT_RECIPE.warmup),
    dropout: num(values.dropout, DEFAULT_RECIPE.dropout),
    shift: num(values.shift, DEFAULT_RECIPE.shift),
    seed: num(values.seed, DEFAULT_RECIPE.seed),
    weightsDtype: values.f32 ? ('F32' as const) : ('F16' as const),
  };
  const report = await initBackend(values.backend as BackendChoice);
  console.error(`backend: ${report.name} (${report.device})`);
  const train = await openDataset(values.data, { imageSize: 28, channels: 1, split: 'train' });
  const test = await openDataset(values.data, { imageSize: 28, channels: 1, split: 'test' });
  console.error(`data: ${train.size} training images, ${test.size} held out, ${train.classes?.length ?? 0} classes`);
  const trained = await trainClassifier(train, test, recipe, {
    backend: `${report.name} (${report.device})`,
    onProgress: (p) =>
      console.error(
        `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  ${p.elapsedSeconds.toFixed(0)} s`,
      ),
  });
  saveClassifier(values.out, trained.meta, trained.params, trained.stats);
  const m = trained.meta;
  console.log(
    JSON.stringify(
      {
        out: values.out,
        bytes: fs.statSync(values.out).size,
        parameters: classifierParamCount(m.config),
        heldOutAccuracy: m.heldOutAccuracy,
        heldOutImages: m.data.heldOutImages,
        wallSeconds: m.wallSeconds,
        recipe: m.recipe,
        backend: m.backend,
      },
      null,
      2,
    ),
  );
  await shutdownBackend();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
