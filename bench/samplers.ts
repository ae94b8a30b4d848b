/**
 * Sample quality by sampler: one checkpoint sampled with several samplers (DDIM steps, spacing and η; DDPM), the same
 * seed and number of images each, judged by the shipped classifier for its data (sidecar/quality/): coverage of the
 * classes, mean confidence, Fréchet distance in the classifier's features, and the median pixel (backgrounds).
 * Prints a table on stderr and the JSON on stdout.
 *
 *   npm run bench:samplers -- --ckpt models/mnist.safetensors [--n 64] [--seed 1] [--configs ddim-50-leading,...]
 *     [--class each|any|N] [--guidance W] [--backend auto] [--workers N|auto]
 * A config is ddim-<steps>-<spacing>[-eta<η>] or ddpm.
 */
import { initBackend, shutdownBackend, type BackendChoice } from '../sidecar/backend.ts';
import { loadCheckpoint } from '../sidecar/checkpoint/checkpoint.ts';
import { classLabels } from '../sidecar/jobs/sampleCheckpoint.ts';
import { sampleImages } from '../sidecar/jobs/sample.ts';
import { disposeWeights, loadWeights } from '../sidecar/jobs/weights.ts';
import { classifierForSource, sampleQuality } from '../sidecar/quality/sampleQuality.ts';
import { disposeClassifier, loadClassifier } from '../sidecar/quality/classifier.ts';
import type { DdimSpacing } from '../sidecar/ddpm/schedule.ts';
import { errorText, intFlag, listFlag, parseFlags, UsageError } from './common.ts';

const DEFAULT_CONFIGS = [
  'ddim-50-leading',
  'ddim-50-trailing',
  'ddim-50-linspace',
  'ddim-200-leading',
  'ddim-200-trailing',
  'ddim-50-trailing-eta1',
  'ddpm',
];

interface SamplerConfig {
  name: string;
  sampler: 'ddim' | 'ddpm';
  steps: number;
  spacing: DdimSpacing;
  eta: number;
}

function parseConfig(name: string): SamplerConfig {
  if (name === 'ddpm') return { name, sampler: 'ddpm', steps: 1, spacing: 'trailing', eta: 0 };
  const m = /^ddim-(\d+)-(leading|trailing|linspace)(?:-eta([\d.]+))?$/.exec(name);
  if (!m) throw new UsageError(`--configs: '${name}' is not ddim-<steps>-<spacing>[-eta<η>] or ddpm`);
  return { name, sampler: 'ddim', steps: Number(m[1]), spacing: m[2] as DdimSpacing, eta: m[3] ? Number(m[3]) : 0 };
}

function median(values: Float32Array): number {
  const s = Float32Array.from(values).sort();
  return s[s.length >> 1];
}

async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, ['help'], ['ckpt', 'n', 'seed', 'configs', 'class', 'guidance', 'backend', 'workers']);
  if (f.has('help') || !f.has('ckpt')) {
    console.error(
      'usage: npm run bench:samplers -- --ckpt FILE [--n 64] [--seed 1] [--configs a,b,…] [--class each|any|N] [--guidance W] [--backend auto] [--workers N|auto]',
    );
    return f.has('help') ? 0 : 2;
  }
  const ckpt = String(f.get('ckpt'));
  const n = intFlag(f, 'n', 64, 2);
  const seed = intFlag(f, 'seed', 1, 0);
  const configs = listFlag(f, 'configs', DEFAULT_CONFIGS.join(',')).map(parseConfig);
  const guidance = f.has('guidance') ? Number(f.get('guidance')) : 2;
  const rawClass = f.has('class') ? String(f.get('class')) : 'each';
  const choice = rawClass === 'each' || rawClass === 'any' ? rawClass : Number(rawClass);
  const workersRaw = f.has('workers') ? String(f.get('workers')) : 'auto';
  const workers = workersRaw === 'auto' ? 'auto' : Number(workersRaw);
  const report = await initBackend((f.get('backend') as BackendChoice | undefined) ?? 'auto');
  const meta = loadCheckpoint(ckpt, []).meta;
  const classifier = loadClassifier(classifierForSource(meta.data?.source).file);
  const w = loadWeights(ckpt, true);
  const c = w.meta.model;
  const labels = classLabels(c.numClasses ?? 0, choice, n);
  const rows: Record<string, unknown>[] = [];
  try {
    for (const cfg of configs) {
      const t0 = Date.now();
      const r = await sampleImages(w.params, c, w.meta.schedule, {
        n,
        sampler: cfg.sampler,
        steps: cfg.steps,
        spacing: cfg.spacing,
        eta: cfg.eta,
        seed,
        workers,
        ...(labels ? { labels, guidance } : {}),
      });
      const q = await sampleQuality(r.images, r.shape, classifier, labels);
      const row = {
        config: cfg.name,
        coverage: q.coverage,
        meanConfidence: q.meanConfidence,
        frechetDistance: q.frechetDistance,
        medianPixel: Math.round(((median(r.images) + 1) / 2) * 255),
        ...(q.classAgreement !== undefined ? { classAgreement: q.classAgreement } : {}),
        classHistogram: q.classHistogram,
        seconds: (Date.now() - t0) / 1000,
      };
      rows.push(row);
      console.error(
        `${cfg.name.padEnd(24)} classes ${String(q.coverage).padStart(2)}  conf ${q.meanConfidence.toFixed(3)}  FD ${q.frechetDistance.toFixed(1).padStart(8)}  median px ${row.medianPixel}${q.classAgreement !== undefined ? `  agree ${q.classAgreement.toFixed(3)}` : ''}  ${row.seconds.toFixed(0)} s`,
      );
    }
  } finally {
    disposeWeights(w);
    disposeClassifier(classifier);
    await shutdownBackend();
  }
  console.log(
    JSON.stringify({
      checkpoint: ckpt,
      step: meta.step,
      n,
      seed,
      backend: report.name,
      date: new Date().toISOString(),
      class: choice,
      guidance: labels ? guidance : null,
      rows,
    }),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof UsageError ? e.message : `bench:samplers: ${errorText(e)}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
