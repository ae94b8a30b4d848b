/**
 * Kernel benchmark: how fast the backend runs the U-Net's 3×3 convolutions, forward and both gradients, in GFLOP/s,
 * at each resolution level of a preset, and with --compare-torch the same kernels in PyTorch on 1 and 2 threads.
 *
 *   npm run bench:kernels -- [--preset tiny,mnist,cifar10] [--batch 8] [--backend auto|wasm|webgpu|cpu|tensorflow]
 *                            [--reps 5] [--warmup 2] [--compare-torch] [--python PATH] [--json]
 *
 * Why: a training step is mostly these three kernels (about 80% of a wasm step's kernel time), so their throughput
 * per thread bounds the step: the engine benchmark's ratio to PyTorch cannot be better than this one's. The kernels
 * are the ones training uses, our overrides included (on wasm the gradients are forward convolutions:
 * sidecar/kernels/convGradients.ts).
 *
 * Output: a table (markdown) and one JSON document on stdout; with --json only the JSON document.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend, type BackendChoice } from '../sidecar/backend.ts';
import { presetConfig } from '../sidecar/ddpm/unet.ts';
import {
  childFailure,
  errorText,
  intFlag,
  listFlag,
  machineInfo,
  median,
  parseFlags,
  round,
  runChild,
  UsageError,
  type MachineInfo,
} from './common.ts';

const USAGE = `usage: npm run bench:kernels -- [options]
  --preset LIST       presets whose conv shapes are measured: tiny, mnist, cifar10 (default: tiny,mnist,cifar10)
  --batch N           batch size of the activations (default: 8)
  --backend NAME      auto (default), tensorflow, webgpu, wasm or cpu
  --reps N            timed runs per kernel (default: 5)
  --warmup N          untimed runs per kernel first (default: 2)
  --compare-torch     also time the kernels in PyTorch (bench/torch_kernels.py) on 1 and 2 threads
  --python PATH       the Python that has PyTorch (default: /usr/bin/python3)
  --json              print only the JSON document on stdout`;

const KERNELS = ['conv2d', 'filterGrad', 'inputGrad'] as const;
type KernelName = (typeof KERNELS)[number];

/** A 3×3, stride-1, 'same' convolution of an [n, h, w, cin] activation to cout channels. */
interface ConvShape {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
}

const shapeKey = (s: ConvShape): string => `${s.n}x${s.h}x${s.w}x${s.cin}x${s.cout}`;

/** Multiply-adds × 2 of a 3×3 convolution; each gradient does the same number. */
const convFlops = (s: ConvShape): number => 2 * s.n * s.h * s.w * 9 * s.cin * s.cout;

/** The ResBlocks' C→C 3×3 convolution at each resolution level of a preset: one shape per level. */
function presetShapes(preset: string, batch: number): ConvShape[] {
  const c = presetConfig(preset);
  return c.chMult.map((m, level) => {
    const res = c.imageSize / 2 ** level;
    return { n: batch, h: res, w: res, cin: c.ch * m, cout: c.ch * m };
  });
}

interface KernelTiming {
  preset: string;
  shape: string;
  kernel: KernelName;
  gflop: number;
  ms: number;
  gflopPerSec: number;
  /** PyTorch's median ms for the same kernel and shape, by thread count (with --compare-torch). */
  torchMs?: Record<string, number>;
  /** ours / PyTorch on one thread: how much slower the backend's kernel is than PyTorch's, per core. */
  ratioToTorch1?: number;
  ratioToTorch2?: number;
}

function runKernel(kernel: KernelName, x: tf.Tensor4D, filter: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor {
  const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1] };
  switch (kernel) {
    case 'conv2d':
      return tf.conv2d(x, filter, 1, 'same');
    case 'filterGrad':
      // The kernel the training step's gradient runs; tfjs has no public op for it.
      return tf
        .engine()
        .runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape }) as tf.Tensor;
    case 'inputGrad':
      return tf
        .engine()
        .runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape }) as tf.Tensor;
  }
}

async function timeKernel(kernel: KernelName, s: ConvShape, reps: number, warmup: number): Promise<number> {
  const x = tf.randomNormal([s.n, s.h, s.w, s.cin]) as tf.Tensor4D;
  const filter = tf.randomNormal([3, 3, s.cin, s.cout]) as tf.Tensor4D;
  const dy = tf.randomNormal([s.n, s.h, s.w, s.cout]) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const ms: number[] = [];
  try {
    for (let i = 0; i < warmup + reps; i++) {
      const t0 = performance.now();
      const out = tf.tidy(() => runKernel(kernel, x, filter, dy));
      await out.data(); // the time until the result is readable: on webgpu the kernel runs asynchronously
      out.dispose();
      if (i >= warmup) ms.push(performance.now() - t0);
    }
  } finally {
    tf.dispose([x, filter, dy]);
  }
  const leaked = tf.memory().numTensors - (before - 3);
  if (leaked !== 0) throw new Error(`${kernel} at ${shapeKey(s)} leaked ${leaked} tensors`);
  return median(ms);
}

interface TorchLine {
  impl?: string;
  threads?: number;
  results?: { shape: string; kernel: string; ms_median: number }[];
}

async function torchTimings(
  python: string,
  shapes: string[],
  threads: number,
  reps: number,
  warmup: number,
): Promise<TorchLine> {
  const script = path.join(path.resolve(__dirname, '..'), 'bench', 'torch_kernels.py');
  const args = [
    script,
    '--shapes',
    shapes.join(','),
    '--threads',
    String(threads),
    '--reps',
    String(reps),
    '--warmup',
    String(warmup),
  ];
  const out = await runChild(python, args, {
    cwd: path.dirname(script),
    timeoutS: 0,
    verbose: false,
    label: `torch ${threads}t`,
  });
  const line = [...out.lines].reverse().find((l) => l.trim().startsWith('{'));
  if (out.code !== 0 || !line) throw new Error(childFailure(out, 'torch_kernels.py'));
  return JSON.parse(line) as TorchLine;
}

function table(rows: KernelTiming[], torch: boolean): string {
  const head = [
    'preset',
    'N×H×W×Cin→Cout',
    'kernel',
    'GFLOP',
    'ms',
    'GFLOP/s',
    ...(torch ? ['torch 1t ms', 'torch 2t ms', 'ours/torch 1t', 'ours/torch 2t'] : []),
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) {
    const cells = [r.preset, r.shape, r.kernel, String(r.gflop), String(r.ms), String(r.gflopPerSec)];
    if (torch)
      cells.push(
        String(r.torchMs?.['1'] ?? '-'),
        String(r.torchMs?.['2'] ?? '-'),
        String(r.ratioToTorch1 ?? '-'),
        String(r.ratioToTorch2 ?? '-'),
      );
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const f = parseFlags(
    argv,
    ['json', 'help', 'compare-torch'],
    ['preset', 'batch', 'backend', 'reps', 'warmup', 'python'],
  );
  if (f.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const presets = listFlag(f, 'preset', 'tiny,mnist,cifar10');
  const batch = intFlag(f, 'batch', 8, 1);
  const reps = intFlag(f, 'reps', 5, 1);
  const warmup = intFlag(f, 'warmup', 2, 0);
  const backend = listFlag(f, 'backend', 'auto')[0] as BackendChoice;
  const python = f.get('python');
  const json = f.has('json');
  const log = (s: string) => (json ? process.stderr.write(s + '\n') : console.log(s));

  const shapes = new Map<string, { preset: string; shape: ConvShape }>();
  for (const p of presets)
    for (const s of presetShapes(p, batch))
      if (!shapes.has(shapeKey(s))) shapes.set(shapeKey(s), { preset: p, shape: s });

  const report = await initBackend(backend);
  log(`backend ${report.name}: ${report.device}`);
  const rows: KernelTiming[] = [];
  try {
    for (const { preset, shape } of shapes.values()) {
      for (const kernel of KERNELS) {
        const ms = await timeKernel(kernel, shape, reps, warmup);
        const flops = convFlops(shape);
        rows.push({
          preset,
          shape: shapeKey(shape),
          kernel,
          gflop: round(flops / 1e9, 3),
          ms: round(ms),
          gflopPerSec: round(flops / ms / 1e6, 1),
        });
        if (!json) process.stderr.write(`  ${shapeKey(shape)} ${kernel}: ${round(ms)} ms\n`);
      }
    }
  } finally {
    await shutdownBackend();
  }

  const machine: MachineInfo = machineInfo();
  const warnings: string[] = [];
  if (f.has('compare-torch')) {
    for (const threads of [1, 2]) {
      try {
        const t = await torchTimings(
          typeof python === 'string' ? python : '/usr/bin/python3',
          [...shapes.keys()],
          threads,
          reps,
          warmup,
        );
        machine.torch ??= t.impl;
        for (const r of t.results ?? []) {
          const row = rows.find((x) => x.shape === r.shape && x.kernel === r.kernel);
          if (!row) continue;
          row.torchMs = { ...row.torchMs, [String(threads)]: r.ms_median };
          const ratio = round(row.ms / r.ms_median);
          if (threads === 1) row.ratioToTorch1 = ratio;
          else row.ratioToTorch2 = ratio;
        }
      } catch (e) {
        warnings.push(`PyTorch on ${threads} thread(s): ${errorText(e)}`);
      }
    }
  }
  const doc = {
    benchmark: 'DDPM Studio conv kernels (bench/kernels.ts)',
    date: new Date().toISOString(),
    command: `npm run bench:kernels -- ${argv.join(' ')}`.trim(),
    machine,
    backend: report.name,
    device: report.device,
    options: { presets, batch, reps, warmup },
    results: rows,
    warnings,
  };
  if (json) {
    console.log(JSON.stringify(doc));
  } else {
    console.log('\n' + table(rows, f.has('compare-torch')));
    for (const w of warnings) console.log(`warning: ${w}`);
    console.log('\n' + JSON.stringify(doc));
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof UsageError ? `${e.message}\n${USAGE}` : `bench:kernels: ${errorText(e)}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
