/**
 * What bench/engine.ts (the parent) and bench/worker.ts (one child per measurement) share: the result format,
 * the line protocol between them, a small argument parser and the statistics helpers.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

/** Each result line a worker prints on stdout starts with this marker; anything else on its stdout is noise (e.g. native warnings). */
export const RESULT_PREFIX = '@@ddpm-bench ';

export type BenchMode = 'train' | 'sample';

/** Milliseconds per step over the measured steps (after warm-up). */
export interface Stats {
  msMedian: number;
  msMin: number;
  msMax: number;
  /** Number of timed steps. */
  n: number;
}

export interface TrainResult extends Stats {
  /** Training throughput: batch / median step seconds. */
  imagesPerSec: number;
  /** Loss of the last step (a sanity check: finite and around 1 for an untrained model). */
  lastLoss: number;
}

export interface SampleResult {
  /** One model forward pass at batch B (inference, dropout off), until its output is read back. */
  forward: Stats;
  /** One DDIM denoising step (forward + update), measured step by step inside a runSampler run. */
  ddimStep: Stats;
  /** One ancestral DDPM step (forward + update + fresh noise), measured the same way. */
  ddpmStep: Stats;
  /** Images per second of a 50-step DDIM run, extrapolated: B / (50 · DDIM step seconds). */
  ddim50ImagesPerSec: number;
  /** Images per second of a 1000-step DDPM run, extrapolated: B / (1000 · DDPM step seconds). */
  ddpm1000ImagesPerSec: number;
}

export interface MemoryResult {
  /** Peak resident set of the whole child process (process.resourceUsage().maxRSS), MB. */
  peakRssMB: number;
  /** Peak tfjs tensor bytes inside one profiled step (tf.profile's peakBytes), or the largest tf.memory() seen between steps. */
  tfPeakBytes: number;
  /** How tfPeakBytes was obtained. */
  tfPeakSource: 'profile' | 'between-steps';
  /** tf.memory().numBytes once the measurement's own tensors are disposed (the model and, for train, the optimizer state remain). */
  tfBytesAtEnd: number;
  /** The wasm backend's linear memory (it only grows; capped at 4 GiB), or null on other backends. */
  wasmHeapBytes: number | null;
  /**
   * WebGPU: bytes of GPU buffers tfjs has allocated (its pool keeps released buffers for reuse, so after a step this
   * is the step's high-water mark), or null on other backends. tfPeakBytes overcounts on every backend: it counts
   * each reshape or clone of a buffer again.
   */
  gpuBytesAllocated?: number | null;
}

export interface TensorCount {
  /** tf.memory().numTensors before the first warm-up step. */
  before: number;
  /** tf.memory().numTensors after the last measured step, with the step's outputs disposed. */
  after: number;
  /** after − before: anything > 0 is a leak in the step. */
  leaked: number;
}

export interface TorchResult {
  impl?: string;
  mode?: 'train' | 'forward';
  params?: number;
  /** false: the PyTorch model is not the same architecture as ours, and the ratio means nothing. */
  paramsMatch?: boolean;
  msMedian?: number;
  msMin?: number;
  msMax?: number;
  threads?: number;
  /** 'cpu' or 'cuda'. */
  device?: string;
  /** Peak resident set of the PyTorch process (getrusage ru_maxrss), MB. */
  peakRssMB?: number;
  /** On CUDA: torch.cuda.max_memory_allocated, MB (the tensors' peak). */
  peakDeviceMB?: number;
  /** On CUDA: torch.cuda.max_memory_reserved, MB (what its caching allocator held, like tfjs-webgpu's buffer pool). */
  peakReservedMB?: number;
  error?: string;
}

export interface MeasurementResult {
  /** The backend that ran (the resolved one for `auto`; the requested one if it could not be initialised). */
  backend: string;
  requestedBackend: string;
  device?: string;
  preset: string;
  batch: number;
  mode: BenchMode;
  params?: number;
  steps: number;
  warmup: number;
  /** Training: images per forward/backward pass when the batch is split (gradient accumulation). */
  microBatch?: number;
  /** Training: threads computing gradients (data parallel; wasm and cpu only). */
  workers?: number;
  train?: TrainResult;
  sample?: SampleResult;
  memory?: MemoryResult;
  tensors?: TensorCount;
  /** Set by the parent with --compare-torch: the matching PyTorch measurement (train ↔ train, sample ↔ forward). */
  torch?: TorchResult;
  /** Ours / torch: train step vs train step, or forward pass vs forward pass. */
  ratioOursToTorch?: number;
  /**
   * Ours / torch memory: peak RSS vs peak RSS when both run on the CPU; on a GPU, tfjs-webgpu's allocated buffer
   * bytes vs torch.cuda.max_memory_reserved (both allocators keep freed memory for reuse).
   */
  memoryRatioOursToTorch?: number;
  /** Wall-clock seconds of the measurement (model build, warm-up and timed steps). */
  wallSeconds?: number;
  /** Set when the measurement failed; the other measurements still run. */
  error?: string;
}

// ---- arguments --------------------------------------------------------------------------------------------------

export class UsageError extends Error {}

/**
 * `--name value`, `--name=value` and boolean `--name` (node:util parseArgs, strict: an unknown option or a
 * positional argument is a UsageError); no positional arguments.
 */
export function parseFlags(
  argv: readonly string[],
  booleans: readonly string[],
  strings: readonly string[],
): Map<string, string | true> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const b of booleans) options[b] = { type: 'boolean' };
  for (const n of strings) options[n] = { type: 'string' };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (e) {
    const m = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(m[0].toLowerCase() + m.slice(1));
  }
  const flags = new Map<string, string | true>();
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string' || v === true) flags.set(k, v);
  return flags;
}

export function listFlag(flags: Map<string, string | true>, name: string, fallback: string): string[] {
  const v = flags.get(name);
  const raw = v === undefined || v === true ? fallback : v;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`--${name} needs at least one value`);
  return items;
}

export function intFlag(flags: Map<string, string | true>, name: string, fallback: number, min: number): number {
  const v = flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${String(v)}'`);
  return n;
}

export function intList(items: readonly string[], name: string, min: number): number[] {
  return items.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: '${s}' is not an integer ≥ ${min}`);
    return n;
  });
}

// ---- statistics -------------------------------------------------------------------------------------------------

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round = (x: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export function stats(ms: readonly number[]): Stats {
  return { msMedian: round(median(ms)), msMin: round(Math.min(...ms)), msMax: round(Math.max(...ms)), n: ms.length };
}

export const errorText = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);

// ---- machine ----------------------------------------------------------------------------------------------------

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGB: number;
  platform: string;
  node: string;
  tfjs: string;
  torch?: string;
}

/** The machine a result was measured on (recorded with every result). */
export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  let tfjs = 'unknown';
  try {
    tfjs = (createRequire(__filename)('@tensorflow/tfjs/package.json') as { version: string }).version;
  } catch {
    // leave 'unknown'
  }
  return {
    cpu,
    cores: os.availableParallelism(),
    memoryGB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tfjs,
  };
}

// ---- child processes --------------------------------------------------------------------------------------------

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Complete stdout lines. */
  lines: string[];
  /** The child's stderr and non-result stdout, last part only (shown when the child fails). */
  tail: string;
  /** Set when the process could not be started at all. */
  spawnError?: string;
}

const TAIL_CHARS = 4000;

/** Runs a child to completion, collecting its stdout lines; a timeout kills it. Never rejects. */
export function runChild(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutS: number; verbose: boolean; label: string },
): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let tail = '';
    let partial = '';
    const noise = (text: string) => {
      tail = (tail + text).slice(-TAIL_CHARS);
      if (opts.verbose) process.stderr.write(text.replace(/^(?=.)/gm, `  [${opts.label}] `));
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (!line.startsWith(RESULT_PREFIX) && !line.startsWith('{')) noise(line + '\n');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => noise(chunk));
    let timedOut = false;
    const timer =
      opts.timeoutS > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutS * 1000)
        : null;
    let spawnError: string | undefined;
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (partial) lines.push(partial);
      resolve({ code, signal, timedOut, lines, tail, ...(spawnError ? { spawnError } : {}) });
    };
    child.on('error', (e) => {
      // Failed to start (ENOENT, EACCES): there will be no output; 'close' may or may not follow.
      spawnError = errorText(e);
      finish(null, null);
    });
    child.on('close', finish);
  });
}

/** One line saying how a child failed, with the last line it printed. */
export function childFailure(o: ChildOutcome, what: string): string {
  if (o.timedOut) return `${what} timed out`;
  if (o.spawnError) return `${what} could not be started: ${o.spawnError}`;
  const last = o.tail
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && !/^at /.test(s))
    .slice(-1)[0];
  const how = o.signal
    ? `was killed by ${o.signal}`
    : o.code === 0
      ? 'printed no result'
      : `exited with code ${o.code}`;
  return `${what} ${how}${last ? `: ${last}` : ''}`;
}
