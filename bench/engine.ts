/**
 * Engine benchmark: training-step and sampling-step speed, and memory, of the DDPM U-Net presets on each backend,
 * optionally side by side with the same architecture in PyTorch (bench/torch_reference.py).
 *
 *   npm run bench -- [--preset tiny,mnist,cifar10] [--batch 8[,16]] [--backend auto | wasm,cpu,...]
 *                    [--mode train|sample|both] [--steps 5] [--warmup 2] [--compare-torch] [--json]
 *
 * Every measurement runs in its own child process (bench/worker.ts): tfjs allows one backend per process, a failed
 * measurement (wasm out of memory) cannot poison the next one, and peak RSS is per measurement. With
 * --compare-torch, the matching PyTorch run follows each of ours (interleaved, so both see the same machine load).
 * Nothing heavy ever runs concurrently.
 *
 * Output: a table (markdown) and one JSON document on stdout; with --json only the JSON document. Progress, and the
 * output of children that failed, go to stderr.
 */
import path from 'node:path';
import {
  childFailure,
  machineInfo,
  errorText,
  intFlag,
  intList,
  listFlag,
  parseFlags,
  RESULT_PREFIX,
  round,
  runChild,
  UsageError,
  type BenchMode,
  type MeasurementResult,
  type TorchResult,
} from './common.ts';

const USAGE = `usage: npm run bench -- [options]
  --preset LIST       presets, comma-separated: tiny, mnist, cifar10 (default: tiny,mnist,cifar10)
  --batch LIST        batch sizes, comma-separated (default: 8)
  --backend LIST      auto (default: whatever auto picks), or any of tensorflow, webgpu, wasm, cpu, each measured
                      in its own process. A software WebGPU adapter needs an explicit 'webgpu' and, for Mesa,
                      EGL_PLATFORM=surfaceless DDPM_WEBGPU_FLAGS=backend=opengles DDPM_WEBGPU_FEATURE_LEVEL=compatibility
  --mode MODE         train, sample or both (default: both)
  --steps N           measured steps per measurement (default: 5); also the length of each timed sampler run
  --warmup N          untimed warm-up steps (default: 2)
  --compare-torch     after each measurement, run the same one in PyTorch (bench/torch_reference.py, 2 threads)
  --torch-device DEV  where PyTorch runs: cpu (default) or cuda
  --micro-batch M     training: images per forward/backward pass (gradient accumulation; 0 = whole batch)
  --workers N         threads running the model on wasm/cpu (training: gradients; sampling: slices of the batch; default 1)
  --json              print only the JSON document on stdout
  --seed N            seed of the model, data and noise (default: 0)
  --timeout S         kill a measurement (or torch run) after S seconds; 0 = never (default: 0)
  --python PATH       the Python that has PyTorch (default: /usr/bin/python3)
  --verbose           pass every child's own output through to stderr (by default only a failed child's)`;

const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
const PRESETS = ['tiny', 'mnist', 'cifar10'];
const TORCH_THREADS = 2;

/** Our presets as torch_reference.py flags (the same architecture; the parameter counts are checked). */
const TORCH_ARGS: Record<string, string[]> = {
  tiny: [
    '--ch',
    '16',
    '--ch-mult',
    '1,2',
    '--blocks',
    '1',
    '--attn',
    '8',
    '--size',
    '16',
    '--channels',
    '1',
    '--dropout',
    '0',
    '--groups',
    '8',
  ],
  mnist: [
    '--ch',
    '32',
    '--ch-mult',
    '1,2,2',
    '--blocks',
    '1',
    '--attn',
    '',
    '--size',
    '28',
    '--channels',
    '1',
    '--dropout',
    '0',
    '--groups',
    '32',
  ],
  cifar10: ['--preset', 'cifar10'],
};

interface Options {
  presets: string[];
  batches: number[];
  backends: string[];
  modes: BenchMode[];
  steps: number;
  warmup: number;
  compareTorch: boolean;
  json: boolean;
  seed: number;
  timeoutS: number;
  python: string;
  /** Where PyTorch runs: 'cpu' (TORCH_THREADS threads) or 'cuda'. */
  torchDevice: 'cpu' | 'cuda';
  verbose: boolean;
  microBatch: number;
  workers: number;
}

function parseOptions(argv: readonly string[]): Options | 'help' {
  const booleans = ['compare-torch', 'json', 'verbose', 'help'];
  const f = parseFlags(argv, booleans, [
    'preset',
    'batch',
    'backend',
    'mode',
    'steps',
    'warmup',
    'seed',
    'timeout',
    'python',
    'micro-batch',
    'torch-device',
    'workers',
  ]);
  if (f.has('help')) return 'help';
  const presets = listFlag(f, 'preset', PRESETS.join(','));
  for (const p of presets)
    if (!PRESETS.includes(p)) throw new UsageError(`unknown preset '${p}': choose from ${PRESETS.join(', ')}`);
  const backends = listFlag(f, 'backend', 'auto');
  for (const b of backends)
    if (!BACKENDS.includes(b)) throw new UsageError(`unknown backend '${b}': choose from ${BACKENDS.join(', ')}`);
  const mode = listFlag(f, 'mode', 'both');
  if (mode.length !== 1 || !['train', 'sample', 'both'].includes(mode[0]))
    throw new UsageError(`--mode must be train, sample or both`);
  const python = f.get('python');
  const torchDevice = listFlag(f, 'torch-device', 'cpu');
  if (torchDevice.length !== 1 || !['cpu', 'cuda'].includes(torchDevice[0]))
    throw new UsageError(`--torch-device must be cpu or cuda`);
  return {
    presets,
    batches: intList(listFlag(f, 'batch', '8'), 'batch', 1),
    backends,
    modes: mode[0] === 'both' ? ['train', 'sample'] : [mode[0] as BenchMode],
    steps: intFlag(f, 'steps', 5, 1),
    warmup: intFlag(f, 'warmup', 2, 0),
    compareTorch: f.has('compare-torch'),
    json: f.has('json'),
    seed: intFlag(f, 'seed', 0, 0),
    timeoutS: intFlag(f, 'timeout', 0, 0),
    python: typeof python === 'string' ? python : '/usr/bin/python3',
    torchDevice: torchDevice[0] as 'cpu' | 'cuda',
    verbose: f.has('verbose'),
    microBatch: intFlag(f, 'micro-batch', 0, 0),
    workers: intFlag(f, 'workers', 1, 1),
  };
}

// ---- child processes --------------------------------------------------------------------------------------------

// Two ways to run: from source (`node --import tsx bench/engine.ts`) or as the esbuild bundle dist/bench.js, which
// needs no node_modules but Dawn's, so it can be copied to a GPU machine that has only node and a driver.
const BUNDLED = __filename.endsWith('.js');
const REPO_ROOT = path.resolve(__dirname, '..');
const WORKER = BUNDLED ? path.join(__dirname, 'bench-worker.js') : path.join(__dirname, 'worker.ts');
const TORCH_SCRIPT = path.join(REPO_ROOT, 'bench', 'torch_reference.py');

async function measure(
  o: Options,
  backend: string,
  preset: string,
  batch: number,
  mode: BenchMode,
  label: string,
): Promise<MeasurementResult> {
  const args = [
    ...(BUNDLED ? [] : ['--import', 'tsx']),
    WORKER,
    '--backend',
    backend,
    '--preset',
    preset,
    '--batch',
    String(batch),
    '--mode',
    mode,
  ];
  args.push(
    '--steps',
    String(o.steps),
    '--warmup',
    String(o.warmup),
    '--seed',
    String(o.seed),
    '--micro-batch',
    String(o.microBatch),
    '--workers',
    String(o.workers),
  );
  const out = await runChild(process.execPath, args, {
    cwd: REPO_ROOT,
    timeoutS: o.timeoutS,
    verbose: o.verbose,
    label,
  });
  const results: MeasurementResult[] = [];
  for (const line of out.lines) {
    if (!line.startsWith(RESULT_PREFIX)) continue;
    try {
      results.push(JSON.parse(line.slice(RESULT_PREFIX.length)) as MeasurementResult);
    } catch {
      // A truncated line (the child died while writing): reported below as a failure.
    }
  }
  const r = results[0];
  if (r) {
    if (r.error && !o.verbose && out.tail.trim()) process.stderr.write(indent(out.tail, `  [${label}] `));
    return r;
  }
  if (!o.verbose && out.tail.trim()) process.stderr.write(indent(out.tail, `  [${label}] `));
  return {
    backend,
    requestedBackend: backend,
    preset,
    batch,
    mode,
    steps: o.steps,
    warmup: o.warmup,
    error: childFailure(out, 'the benchmark worker'),
  };
}

/** The JSON line torch_reference.py prints. */
interface TorchLine {
  impl?: string;
  mode?: 'train' | 'forward';
  params?: number;
  ms_median?: number;
  ms_min?: number;
  ms_max?: number;
  threads?: number;
  device?: string;
  peak_rss_mb?: number;
  peak_device_mb?: number;
  peak_reserved_mb?: number;
}

async function measureTorch(
  o: Options,
  preset: string,
  batch: number,
  mode: BenchMode,
  label: string,
): Promise<TorchResult> {
  const args = [
    TORCH_SCRIPT,
    ...TORCH_ARGS[preset],
    '--batch',
    String(batch),
    '--mode',
    mode === 'train' ? 'train' : 'forward',
  ];
  args.push(
    '--steps',
    String(o.steps),
    '--warmup',
    String(o.warmup),
    '--threads',
    String(TORCH_THREADS),
    '--device',
    o.torchDevice,
  );
  const out = await runChild(o.python, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    timeoutS: o.timeoutS,
    verbose: o.verbose,
    label,
  });
  const line = [...out.lines].reverse().find((l) => l.trim().startsWith('{'));
  if (out.code === 0 && line) {
    try {
      const raw = JSON.parse(line) as TorchLine;
      if (typeof raw.ms_median === 'number' && typeof raw.params === 'number') {
        return {
          impl: raw.impl,
          mode: raw.mode,
          params: raw.params,
          msMedian: raw.ms_median,
          msMin: raw.ms_min,
          msMax: raw.ms_max,
          threads: raw.threads,
          device: raw.device,
          peakRssMB: raw.peak_rss_mb,
          peakDeviceMB: raw.peak_device_mb,
          peakReservedMB: raw.peak_reserved_mb,
        };
      }
    } catch {
      // fall through: reported as an error
    }
  }
  if (!o.verbose && out.tail.trim()) process.stderr.write(indent(out.tail, `  [${label}] `));
  return { error: childFailure(out, 'torch_reference.py') };
}

const indent = (text: string, prefix: string): string => text.replace(/^(?=.)/gm, prefix).replace(/\n?$/, '\n');

// ---- report -----------------------------------------------------------------------------------------------------

const fmt = (x: number | undefined | null, digits = 2): string =>
  x === undefined || x === null || !Number.isFinite(x) ? '-' : String(round(x, digits));

/** Memory of the compute device: GPU buffers on webgpu, the wasm heap on wasm, tfjs' tensor bytes otherwise. */
function ourDeviceMB(r: MeasurementResult): number | undefined {
  const m = r.memory;
  if (!m) return undefined;
  const bytes = m.gpuBytesAllocated ?? m.wasmHeapBytes ?? m.tfPeakBytes;
  return bytes / 2 ** 20;
}

function torchColumns(r: MeasurementResult): [string, string, string, string] {
  if (!r.torch) return ['', '', '', ''];
  if (r.torch.error) return ['error', '-', '-', '-'];
  const ratio = fmt(r.ratioOursToTorch);
  const mem = r.torch.device === 'cuda' ? r.torch.peakReservedMB : r.torch.peakRssMB;
  return [
    fmt(r.torch.msMedian),
    r.torch.paramsMatch === false ? `${ratio} (PARAMS DIFFER)` : ratio,
    fmt(mem, 0),
    fmt(r.memoryRatioOursToTorch),
  ];
}

function tableRows(results: readonly MeasurementResult[]): string[][] {
  const rows: string[][] = [];
  const withTorch = results.some((r) => r.torch);
  const torchCells = (r: MeasurementResult) => (withTorch ? torchColumns(r) : []);
  for (const r of results) {
    const head = [r.backend, r.preset, String(r.batch)];
    const rss = fmt(r.memory?.peakRssMB, 0);
    const deviceMB = fmt(ourDeviceMB(r), 0);
    if (r.error) {
      rows.push([...head, r.mode, 'ERROR', '-', rss, deviceMB, ...torchCells(r)]);
      continue;
    }
    if (r.mode === 'train' && r.train) {
      rows.push([
        ...head,
        'train step',
        fmt(r.train.msMedian),
        fmt(r.train.imagesPerSec),
        rss,
        deviceMB,
        ...torchCells(r),
      ]);
    } else if (r.sample) {
      const s = r.sample;
      rows.push([...head, 'forward', fmt(s.forward.msMedian), '-', rss, deviceMB, ...torchCells(r)]);
      const blank = withTorch ? ['', '', '', ''] : [];
      rows.push([
        ...head,
        'ddim step (50-step run)',
        fmt(s.ddimStep.msMedian),
        fmt(s.ddim50ImagesPerSec, 3),
        rss,
        deviceMB,
        ...blank,
      ]);
      rows.push([
        ...head,
        'ddpm step (1000-step run)',
        fmt(s.ddpmStep.msMedian),
        fmt(s.ddpm1000ImagesPerSec, 4),
        rss,
        deviceMB,
        ...blank,
      ]);
    }
  }
  return rows;
}

function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i >= 2 && i !== 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i >= 2 && i !== 3 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

function humanReport(results: readonly MeasurementResult[], warnings: readonly string[]): string {
  const header = ['backend', 'preset', 'batch', 'mode', 'ms/step', 'images/s', 'peak RSS MB', 'device MB'];
  if (results.some((r) => r.torch)) header.push('torch ms', 'ours/torch', 'torch MB', 'mem ours/torch');
  const out = [markdownTable(header, tableRows(results))];
  const errors = results
    .filter((r) => r.error)
    .map((r) => `${r.backend} ${r.preset} batch ${r.batch} ${r.mode}: ${r.error}`);
  const torchErrors = results
    .filter((r) => r.torch?.error)
    .map((r) => `torch ${r.preset} batch ${r.batch} ${r.mode}: ${r.torch?.error}`);
  if (errors.length || torchErrors.length)
    out.push('', 'Errors:', ...[...errors, ...torchErrors].map((e) => `  - ${e}`));
  if (warnings.length) out.push('', 'Warnings:', ...warnings.map((w) => `  - ${w}`));
  return out.join('\n');
}

function progressLine(r: MeasurementResult): string {
  if (r.error) return `ERROR ${r.error}`;
  const main = r.train
    ? `${fmt(r.train.msMedian)} ms/step, ${fmt(r.train.imagesPerSec)} images/s`
    : r.sample
      ? `forward ${fmt(r.sample.forward.msMedian)} ms, ddim step ${fmt(r.sample.ddimStep.msMedian)} ms, ddpm step ${fmt(r.sample.ddpmStep.msMedian)} ms`
      : '';
  return `${main}, peak RSS ${fmt(r.memory?.peakRssMB, 0)} MB`;
}

// ---- main -------------------------------------------------------------------------------------------------------

async function main(argv: readonly string[]): Promise<number> {
  let o: Options;
  try {
    const parsed = parseOptions(argv);
    if (parsed === 'help') {
      console.log(USAGE);
      return 0;
    }
    o = parsed;
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const startedAt = new Date();
  const machine = machineInfo();
  const results: MeasurementResult[] = [];
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    process.stderr.write(`\n!!! ${w}\n\n`);
  };
  const total = o.backends.length * o.presets.length * o.batches.length * o.modes.length;
  let n = 0;
  for (const backend of o.backends) {
    for (const preset of o.presets) {
      for (const batch of o.batches) {
        for (const mode of o.modes) {
          const label = `${++n}/${total} ${backend} ${preset} b=${batch} ${mode}`;
          process.stderr.write(`[${label}] ...\n`);
          const r = await measure(o, backend, preset, batch, mode, label);
          process.stderr.write(`[${label}] ${r.backend !== backend ? `(${r.backend}) ` : ''}${progressLine(r)}\n`);
          if (r.tensors && r.tensors.leaked !== 0) {
            warn(
              `${r.backend} ${preset} batch ${batch} ${mode}: tf.memory().numTensors went from ${r.tensors.before} to ${r.tensors.after} over the measured steps (a tensor leak)`,
            );
          }
          if (o.compareTorch && !r.error) {
            const tlabel = `${n}/${total} torch ${preset} b=${batch} ${mode === 'train' ? 'train' : 'forward'}`;
            const t = await measureTorch(o, preset, batch, mode, tlabel);
            r.torch = t;
            if (!t.error) {
              machine.torch ??= t.impl;
              t.paramsMatch = t.params === r.params;
              if (!t.paramsMatch) {
                warn(
                  `PARAMETER COUNT MISMATCH for preset ${preset}: ours ${r.params}, PyTorch reference ${t.params}. ` +
                    'The reference is not the same architecture, so the ours/torch ratio is not a like-for-like comparison.',
                );
              }
              const ours = mode === 'train' ? r.train?.msMedian : r.sample?.forward.msMedian;
              if (ours !== undefined && t.msMedian) r.ratioOursToTorch = round(ours / t.msMedian);
              if (t.device === 'cuda') {
                const ours = ourDeviceMB(r);
                if (ours !== undefined && t.peakReservedMB) r.memoryRatioOursToTorch = round(ours / t.peakReservedMB);
              } else if (r.memory && t.peakRssMB) {
                r.memoryRatioOursToTorch = round(r.memory.peakRssMB / t.peakRssMB);
              }
              process.stderr.write(`[${tlabel}] ${fmt(t.msMedian)} ms/step → ours/torch ${fmt(r.ratioOursToTorch)}\n`);
            } else {
              process.stderr.write(`[${tlabel}] ERROR ${t.error}\n`);
            }
          }
          results.push(r);
        }
      }
    }
  }
  const doc = {
    benchmark: 'DDPM Studio engine (bench/engine.ts)',
    date: startedAt.toISOString(),
    command: ['npm run bench --', ...argv].join(' '),
    machine,
    options: {
      presets: o.presets,
      batches: o.batches,
      backends: o.backends,
      modes: o.modes,
      steps: o.steps,
      warmup: o.warmup,
      seed: o.seed,
      compareTorch: o.compareTorch,
      torchThreads: o.compareTorch && o.torchDevice === 'cpu' ? TORCH_THREADS : undefined,
      torchDevice: o.compareTorch ? o.torchDevice : undefined,
    },
    results,
    warnings,
  };
  const json = JSON.stringify(doc, null, 2);
  if (o.json) {
    process.stdout.write(json + '\n');
  } else {
    const when = `${startedAt.toISOString().slice(0, 10)}, ${machine.cpu} (${machine.cores} cores), node ${machine.node}, tfjs ${machine.tfjs}${machine.torch ? `, ${machine.torch} (${TORCH_THREADS} threads)` : ''}`;
    const devices = [...new Set(results.filter((r) => r.device).map((r) => `${r.backend}: ${r.device}`))];
    const head = [when, ...devices.map((d) => `  ${d}`)].join('\n');
    process.stdout.write(`\n${head}\n\n${humanReport(results, warnings)}\n\n${json}\n`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`bench: ${errorText(e)}`);
    process.exitCode = 1;
  },
);
