/**
 * Benchmark child process. tfjs can initialise only one backend per process, and a failed measurement (wasm out of
 * memory, say) can leave a backend unusable, so bench/engine.ts starts one of these per measurement.
 *
 *   node --import tsx bench/worker.ts --backend auto|tensorflow|webgpu|wasm|cpu --preset tiny[,mnist,...]
 *        --batch 8[,16,...] --mode train|sample|both [--steps 5] [--warmup 2] [--seed 0]
 *
 * Initialises the backend, builds each preset's model, and prints one line per (preset, batch, mode) on stdout:
 * RESULT_PREFIX followed by a MeasurementResult as JSON (with `error` set if that measurement failed).
 *
 * Timing: performance.now() around each step, and a step counts as finished only once a result has been read back
 * (trainStep awaits its loss and gradient norm; a forward pass awaits y.data(); a sampler step awaits x.data()), so
 * asynchronous backends (WebGPU) are timed on completed work, not on queued work.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, shutdownBackend, type BackendChoice, type BackendReport } from '../sidecar/backend.ts';
import { GaussianDiffusion } from '../sidecar/ddpm/diffusion.ts';
import { Rng } from '../sidecar/ddpm/rng.ts';
import { runSampler, type EpsModel, type SamplerKind } from '../sidecar/ddpm/sampler.ts';
import { makeSchedule } from '../sidecar/ddpm/schedule.ts';
import { presetConfig, UNet } from '../sidecar/ddpm/unet.ts';
import { withSamplingThreads } from '../sidecar/jobs/sample.ts';
import { ParallelTrainer } from '../sidecar/parallel/trainer.ts';
import { forwardAtRandomTimesteps } from './forward.ts';
import {
  errorText,
  intFlag,
  intList,
  listFlag,
  parseFlags,
  RESULT_PREFIX,
  round,
  stats,
  UsageError,
  type BenchMode,
  type MeasurementResult,
  type MemoryResult,
  type SampleResult,
  type TensorCount,
  type TrainResult,
} from './common.ts';

interface WorkerOptions {
  backend: BackendChoice;
  presets: string[];
  batches: number[];
  modes: BenchMode[];
  steps: number;
  warmup: number;
  seed: number;
  microBatch: number;
  workers: number;
}

function parseOptions(argv: readonly string[]): WorkerOptions {
  const f = parseFlags(
    argv,
    [],
    ['backend', 'preset', 'batch', 'mode', 'steps', 'warmup', 'seed', 'micro-batch', 'workers'],
  );
  const mode = listFlag(f, 'mode', 'both')[0];
  if (!['train', 'sample', 'both'].includes(mode))
    throw new UsageError(`--mode must be train, sample or both, got '${mode}'`);
  return {
    backend: listFlag(f, 'backend', 'auto')[0] as BackendChoice,
    presets: listFlag(f, 'preset', 'tiny'),
    batches: intList(listFlag(f, 'batch', '8'), 'batch', 1),
    modes: mode === 'both' ? ['train', 'sample'] : [mode as BenchMode],
    steps: intFlag(f, 'steps', 5, 1),
    warmup: intFlag(f, 'warmup', 2, 0),
    seed: intFlag(f, 'seed', 0, 0),
    microBatch: intFlag(f, 'micro-batch', 0, 0),
    workers: intFlag(f, 'workers', 1, 1),
  };
}

// ---- memory -----------------------------------------------------------------------------------------------------

/** Peak tensor bytes: tf.profile on one (untimed) step sees every kernel's allocation; polling between steps is the fallback. */
class PeakBytes {
  profilePeak: number | null = null;
  polled = 0;
  /** WebGPU buffers held at most before the profiled step (see profileLast). */
  gpuBeforeProfile: number | null = null;

  poll(): void {
    this.polled = Math.max(this.polled, tf.memory().numBytes);
  }

  /** Runs one step under tf.profile (profiling adds per-kernel bookkeeping, so this step is never a timed one). */
  async profiled(step: () => Promise<void>): Promise<void> {
    if (this.gpuBeforeProfile === null) this.gpuBeforeProfile = gpuBytesAllocated();
    const info = await tf.profile(async () => {
      await step();
    });
    this.profilePeak = Math.max(this.profilePeak ?? 0, info.peakBytes);
    this.poll();
  }
}

function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  try {
    // tf.backend() is typed as the generic KernelBackend; the wasm backend's Emscripten module (`wasm`, with its
    // HEAPU8 view of the linear memory) is not part of any exported type, so it is reached through a narrow cast.
    const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
    return typeof heap === 'number' ? heap : null;
  } catch {
    return null;
  }
}

function gpuBytesAllocated(): number | null {
  if (tf.getBackend() !== 'webgpu') return null;
  // Our pool (sidecar/kernels/webgpuBufferPool.ts) gives memory back, so its current figure is not the peak.
  const pool = (tf.backend() as unknown as { bufferManager?: { peakBytesAllocated?: number } }).bufferManager;
  if (typeof pool?.peakBytesAllocated === 'number') return pool.peakBytesAllocated;
  // tfjs-webgpu's memory() adds its buffer manager's counters to the generic MemoryInfo.
  const m = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
  return typeof m.numBytesAllocatedInGPU === 'number' ? m.numBytesAllocatedInGPU : null;
}

function memoryResult(peak: PeakBytes): MemoryResult {
  return {
    // maxRSS is in kilobytes.
    peakRssMB: round(process.resourceUsage().maxRSS / 1024, 1),
    tfPeakBytes: peak.profilePeak ?? peak.polled,
    tfPeakSource: peak.profilePeak !== null ? 'profile' : 'between-steps',
    tfBytesAtEnd: tf.memory().numBytes,
    wasmHeapBytes: wasmHeapBytes(),
    gpuBytesAllocated: peak.gpuBeforeProfile ?? gpuBytesAllocated(),
  };
}

function tensorCount(before: number): TensorCount {
  const after = tf.memory().numTensors;
  return { before, after, leaked: after - before };
}

/**
 * Whether the profiled step comes after the timed ones (and after the GPU memory figure is taken) rather than first.
 * On WebGPU, tf.profile keeps every buffer of the profiled step alive until it ends (tiny preset, batch 4: 74 MB live
 * instead of 16 MB), and a pool that keeps what it allocated would report that step instead of training.
 */
function profileLast(warmup: number): boolean {
  return warmup === 0 || tf.getBackend() === 'webgpu';
}

/** Untimed warm-up steps; the first runs under tf.profile to get the peak memory, unless profileLast. */
async function warmUp(step: () => Promise<void>, warmup: number, peak: PeakBytes): Promise<void> {
  for (let i = 0; i < warmup; i++) {
    if (i === 0 && !profileLast(warmup)) await peak.profiled(step);
    else await step();
    peak.poll();
  }
}

/** `steps` timed steps; then the profiled step if profileLast, so that profiling never disturbs a timing. */
async function timeSteps(step: () => Promise<void>, steps: number, peak: PeakBytes, warmup: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
    peak.poll();
  }
  if (profileLast(warmup)) await peak.profiled(step);
  return times;
}

// ---- measurements -----------------------------------------------------------------------------------------------

interface Context {
  model: UNet;
  diffusion: GaussianDiffusion;
  batch: number;
  o: WorkerOptions;
}

function imageShape(ctx: Context): [number, number, number, number] {
  const { imageSize, channels } = ctx.model.config;
  return [ctx.batch, imageSize, imageSize, channels];
}

async function measureTrain(ctx: Context): Promise<{ train: TrainResult; memory: MemoryResult; tensors: TensorCount }> {
  const { model, diffusion, batch, o } = ctx;
  const trainer = new ParallelTrainer(
    model,
    diffusion,
    { lr: 2e-4, warmupSteps: 0, microBatch: o.microBatch, workers: o.workers },
    o.seed,
  );
  const x0 = tf.randomUniform(imageShape(ctx), -1, 1, 'float32', o.seed) as tf.Tensor4D;
  try {
    const before = tf.memory().numTensors;
    const peak = new PeakBytes();
    peak.poll();
    let lastLoss = NaN;
    const step = async () => {
      lastLoss = (await trainer.trainStep(x0)).loss;
    };
    await warmUp(step, o.warmup, peak);
    const times = await timeSteps(step, o.steps, peak, o.warmup);
    const tensors = tensorCount(before);
    const s = stats(times);
    return {
      train: { ...s, imagesPerSec: round(batch / (s.msMedian / 1000)), lastLoss: round(lastLoss, 4) },
      memory: memoryResult(peak),
      tensors,
    };
  } finally {
    x0.dispose();
    trainer.dispose();
  }
}

async function measureSample(
  ctx: Context,
): Promise<{ sample: SampleResult; memory: MemoryResult; tensors: TensorCount }> {
  const { model, diffusion, batch, o } = ctx;
  // With --workers, the sampler's threads (parallel/workerPool.ts), as the sidecar runs them: started and loaded before
  // anything is timed. A measurement that could not start them fails rather than timing one thread.
  const threads = {
    workers: o.workers,
    onWarning: (m: string) => {
      throw new Error(m);
    },
  };
  return withSamplingThreads(model.params, model.config, diffusion.schedule.config, batch, threads, (epsModel) =>
    measureSampleWith(ctx, epsModel),
  );
}

async function measureSampleWith(
  ctx: Context,
  epsModel: EpsModel,
): Promise<{ sample: SampleResult; memory: MemoryResult; tensors: TensorCount }> {
  const { diffusion, batch, o } = ctx;
  const shape = imageShape(ctx);
  const x = tf.randomNormal(shape, 0, 1, 'float32', o.seed) as tf.Tensor4D;
  const rng = new Rng(o.seed);
  try {
    const before = tf.memory().numTensors;
    const peak = new PeakBytes();
    peak.poll();

    // A bare forward pass at a random timestep per image.
    const forward = () => forwardAtRandomTimesteps(epsModel, x, diffusion.T, rng);

    // Sampler steps, timed one by one inside a real runSampler run: each step ends when its x_{t−1} has been read.
    // DDPM runs from x at t = steps−1 (runSampler's start), so that it takes `steps` steps instead of T.
    const samplerSteps = async (sampler: SamplerKind, steps: number): Promise<number[]> => {
      const times: number[] = [];
      let last = performance.now();
      const out = await runSampler(
        epsModel,
        diffusion,
        shape,
        {
          sampler,
          steps,
          seed: o.seed,
          wantTensors: () => true,
          onStep: async (info) => {
            if (info.xt) await info.xt.data();
            const now = performance.now();
            times.push(now - last);
            last = now;
          },
        },
        sampler === 'ddpm' ? { x, t: steps - 1 } : undefined,
      );
      out.dispose();
      peak.poll();
      return times;
    };

    // Every warm-up first (forward passes, then short runs of both samplers), so that the first timed phase gets
    // as warm a JIT and backend as the last one.
    await warmUp(forward, o.warmup, peak);
    const warm = Math.min(o.warmup, 2);
    if (warm > 0) {
      await samplerSteps('ddim', warm);
      await samplerSteps('ddpm', warm);
    }
    const forwardTimes = await timeSteps(forward, o.steps, peak, o.warmup);
    const ddimTimes = await samplerSteps('ddim', o.steps);
    const ddpmTimes = await samplerSteps('ddpm', o.steps);

    const tensors = tensorCount(before);
    const ddimStep = stats(ddimTimes);
    const ddpmStep = stats(ddpmTimes);
    return {
      sample: {
        forward: stats(forwardTimes),
        ddimStep,
        ddpmStep,
        ddim50ImagesPerSec: round(batch / ((50 * ddimStep.msMedian) / 1000), 4),
        ddpm1000ImagesPerSec: round(batch / ((1000 * ddpmStep.msMedian) / 1000), 4),
      },
      memory: memoryResult(peak),
      tensors,
    };
  } finally {
    x.dispose();
  }
}

// ---- main -------------------------------------------------------------------------------------------------------

function emit(r: MeasurementResult): void {
  process.stdout.write(RESULT_PREFIX + JSON.stringify(r) + '\n');
}

async function main(argv: readonly string[]): Promise<number> {
  let o: WorkerOptions;
  try {
    o = parseOptions(argv);
  } catch (e) {
    console.error(`bench worker: ${(e as Error).message}`);
    return 2;
  }
  const base = (preset: string, batch: number, mode: BenchMode): MeasurementResult => ({
    backend: o.backend,
    requestedBackend: o.backend,
    preset,
    batch,
    mode,
    steps: o.steps,
    warmup: o.warmup,
    ...(o.microBatch > 0 ? { microBatch: o.microBatch } : {}),
    ...(o.workers > 1 ? { workers: o.workers } : {}),
  });

  let report: BackendReport;
  try {
    report = await initBackend(o.backend);
  } catch (e) {
    for (const preset of o.presets)
      for (const batch of o.batches)
        for (const mode of o.modes) emit({ ...base(preset, batch, mode), error: errorText(e) });
    return 1;
  }

  const diffusion = new GaussianDiffusion(makeSchedule());
  let failed = false;
  for (const preset of o.presets) {
    let model: UNet | null = null;
    let buildError: unknown = null;
    try {
      model = UNet.create(presetConfig(preset), new Rng(o.seed));
    } catch (e) {
      buildError = e;
    }
    for (const batch of o.batches) {
      for (const mode of o.modes) {
        const r: MeasurementResult = { ...base(preset, batch, mode), backend: report.name, device: report.device };
        if (model) r.params = model.numParams;
        const start = performance.now();
        try {
          if (!model) throw buildError ?? new Error('model was not built');
          const ctx: Context = { model, diffusion, batch, o };
          Object.assign(r, mode === 'train' ? await measureTrain(ctx) : await measureSample(ctx));
        } catch (e) {
          r.error = errorText(e);
          failed = true;
        }
        r.wallSeconds = round((performance.now() - start) / 1000, 1);
        emit(r);
      }
    }
    model?.dispose();
  }
  await shutdownBackend();
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`bench worker: ${errorText(e)}`);
    process.exit(1);
  },
);
