/**
 * The sidecar's request handlers: maps protocol methods to jobs (training, sampling, interpolation) and to
 * checkpoint reading. Nothing numeric here. One training job at a time; sampling and inspection are served while it
 * runs (the jobs interleave at step boundaries on the one compute device, and never share tensors).
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { ResponseError, type CancellationToken, type MessageConnection } from 'vscode-jsonrpc';
import { initBackend, releaseCachedMemory, type BackendChoice, BackendUnavailableError } from './backend.ts';
import { CHECKPOINT_FORMAT, loadCheckpoint, readCheckpointMeta } from './checkpoint/checkpoint.ts';
import { readHeader, readTensorF32, SafetensorsError } from './checkpoint/safetensors.ts';
import { GaussianDiffusion } from './ddpm/diffusion.ts';
import { interpolate, INTERPOLATION_BATCH } from './ddpm/sampler.ts';
import { makeSchedule } from './ddpm/schedule.ts';
import { countParams, paramSpecs, presetConfig, PRESET_NAMES, type UNetConfig } from './ddpm/unet.ts';
import { encodeGrid, loadImage } from './image/png.ts';
import { runTrainJob } from './jobs/train.ts';
import { WasmMemoryError } from './ddpm/wasmMemory.ts';
import { sampleImages, withSamplingThreads } from './jobs/sample.ts';
import * as P from './params.ts';
import {
  CheckpointSavedNotification,
  EmaDiffRequest,
  ErrorCodes,
  InfoRequest,
  InspectRequest,
  InterpolateProgressNotification,
  InterpolateRequest,
  JobEndedNotification,
  LogNotification,
  PROTOCOL_VERSION,
  SampleProgressNotification,
  SampleRequest,
  TensorStatsRequest,
  TrainPreviewNotification,
  TrainProgressNotification,
  TrainRequest,
  TrainStopRequest,
  type InfoResult,
  type InspectResult,
  type TensorStatsResult,
} from './protocol.ts';

const VERSION = '0.1.0';
/** Training progress notifications per second, at most. */
const PROGRESS_HZ = 10;

interface Job {
  id: string;
  controller: AbortController;
  done: Promise<{ step: number; checkpoint: string | null }>;
  step: number;
  steps: number;
}

export interface ServerOptions {
  backend: BackendChoice;
  /** Folders to look for tfjs-node(-gpu) in (sidecar --native-path). */
  nativeSearchPaths?: string[];
}

function b64(buf: Buffer): string {
  return buf.toString('base64');
}

function mustExist(file: string, what: string): void {
  if (!fs.existsSync(file)) throw new ResponseError(ErrorCodes.NotFound, `${what} not found: ${file}`);
}

/** Maps engine errors to protocol errors with a clear message. */
export function toResponseError(e: unknown): ResponseError<void> {
  if (e instanceof ResponseError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.name === 'AbortError') return new ResponseError(ErrorCodes.RequestCancelled, 'cancelled');
  if (err instanceof BackendUnavailableError || err instanceof WasmMemoryError) return new ResponseError(ErrorCodes.BackendUnavailable, err.message);
  if (err instanceof SafetensorsError || /not a DDPM Studio checkpoint|not a readable image|unknown data source|no such|not an IDX|CIFAR-10|no readable images/.test(err.message)) {
    return new ResponseError(/no such (file|folder)/.test(err.message) ? ErrorCodes.NotFound : ErrorCodes.BadInput, err.message);
  }
  return new ResponseError(ErrorCodes.InternalError, err.message);
}

export function registerHandlers(connection: MessageConnection, opts: ServerOptions): { shutdown: () => Promise<void> } {
  let job: Job | null = null;
  const log = (level: 'info' | 'warn' | 'error', message: string) => {
    void connection.sendNotification(LogNotification, { level, message });
  };
  const ensureBackend = () => initBackend(opts.backend, { nativeSearchPaths: opts.nativeSearchPaths ?? [] });
  const handle =
    <A, R>(f: (params: A, token: CancellationToken) => Promise<R>) =>
    async (params: A, token: CancellationToken): Promise<R | ResponseError<void>> => {
      try {
        return await f(params, token);
      } catch (e) {
        const r = toResponseError(e);
        if (r.code === ErrorCodes.InternalError) log('error', `internal error: ${(e as Error).stack ?? r.message}`);
        return r;
      }
    };
  const abortOn = (token: CancellationToken): AbortController => {
    const ac = new AbortController();
    if (token.isCancellationRequested) ac.abort();
    token.onCancellationRequested(() => ac.abort());
    return ac;
  };
  const weightsOf = (file: string, useEma: boolean) => {
    mustExist(file, 'checkpoint');
    const ck = loadCheckpoint(file, ['ema', 'model']);
    const group = (useEma ? ck.groups.ema : undefined) ?? ck.groups.model;
    if (!group) throw new ResponseError(ErrorCodes.BadInput, `${file} holds no model weights`);
    return { meta: ck.meta, params: new Map([...group].map(([k, v]) => [k, tf.tensor(v.data, v.shape)])) };
  };

  connection.onRequest(
    InfoRequest,
    handle(async (): Promise<InfoResult> => {
      const report = await ensureBackend();
      return {
        version: VERSION,
        protocol: PROTOCOL_VERSION,
        node: process.version,
        tfjs: tf.version.tfjs,
        backend: { name: report.name, device: report.device, attempts: report.attempts },
        presets: PRESET_NAMES.map((name) => {
          const c = presetConfig(name);
          return { name, params: countParams(paramSpecs(c)), imageSize: c.imageSize, channels: c.channels };
        }),
        training: job ? { jobId: job.id, step: job.step, steps: job.steps } : null,
      };
    }),
  );

  connection.onRequest(
    TrainRequest,
    handle(async (raw) => {
      const p = P.object(raw, 'ddpm/train');
      const data = P.str(p, 'data');
      const preset = P.oneOf(p, 'preset', PRESET_NAMES, 'mnist');
      const steps = P.int(p, 'steps', undefined, 1);
      const batch = P.int(p, 'batch', undefined, 1, 4096);
      const out = P.str(p, 'out');
      const train = {
        ...(p.lr !== undefined ? { lr: P.num(p, 'lr', undefined, 1e-12, 1) } : {}),
        ...(p.warmup !== undefined ? { warmupSteps: P.int(p, 'warmup', undefined, 0) } : {}),
        ...(p.emaDecay !== undefined ? { emaDecay: P.num(p, 'emaDecay', undefined, 0, 0.999999999) } : {}),
        ...(p.microBatch !== undefined ? { microBatch: P.int(p, 'microBatch', undefined, 0) } : {}),
        ...(p.flip !== undefined ? { randomFlip: P.bool(p, 'flip', true) } : !P.bool(p, 'resume', false) ? { randomFlip: !(data === 'mnist' || data.startsWith('idx:')) } : {}),
      };
      const saveEvery = P.int(p, 'saveEvery', 500, 0);
      const sampleEvery = P.int(p, 'sampleEvery', 0, 0);
      const keep = P.int(p, 'keep', 3, 1);
      const seed = P.int(p, 'seed', 0, 0, 2 ** 32 - 1);
      const resume = P.bool(p, 'resume', false);
      const workers = p.workers === undefined || p.workers === 'auto' ? 'auto' : P.int(p, 'workers', undefined, 1, 64);
      if (job) throw new ResponseError(ErrorCodes.JobRunning, `a training job is already running (${job.id}); stop it first`);
      const report = await ensureBackend();
      const id = randomUUID();
      const controller = new AbortController();
      let lastSent = 0;
      let lastCheckpoint: string | null = null;
      const current: Job = { id, controller, step: 0, steps, done: Promise.resolve({ step: 0, checkpoint: null }) };
      // Start and report errors that happen before the first step (bad data, bad resume) as the request's error.
      let started!: () => void;
      let failedEarly!: (e: unknown) => void;
      const startup = new Promise<void>((res, rej) => {
        started = res;
        failedEarly = rej;
      });
      current.done = runTrainJob({
        data,
        preset,
        steps,
        batch,
        out,
        resume,
        saveEvery,
        sampleEvery,
        keep,
        seed,
        train,
        workers,
        backend: report.name,
        signal: controller.signal,
        onProgress: (pr) => {
          started();
          current.step = pr.step;
          const now = Date.now();
          if (now - lastSent >= 1000 / PROGRESS_HZ || pr.step === pr.steps) {
            lastSent = now;
            void connection.sendNotification(TrainProgressNotification, { jobId: id, ...pr, lastCheckpoint });
          }
        },
        onEvent: (e) => {
          if (e.type === 'checkpoint') {
            lastCheckpoint = e.path;
            void connection.sendNotification(CheckpointSavedNotification, { jobId: id, step: e.step, path: e.path });
          } else if (e.type === 'samples') {
            void connection.sendNotification(TrainPreviewNotification, { jobId: id, step: e.step, path: e.path, png: b64(fs.readFileSync(e.path)) });
          } else if (e.type === 'resumed') {
            current.step = e.step;
            log('info', `job ${id}: resumed from ${e.path} at step ${e.step}`);
          } else {
            log('warn', `job ${id}: skipped ${e.count} file(s) that are not readable images, e.g. ${e.examples.join('; ')}`);
          }
        },
      }).then(
        (r) => {
          started();
          job = null;
          releaseCachedMemory();
          void connection.sendNotification(JobEndedNotification, { jobId: id, reason: r.reason, step: r.step, checkpoint: r.checkpoint });
          return { step: r.step, checkpoint: r.checkpoint };
        },
        (e: unknown) => {
          failedEarly(e);
          job = null;
          releaseCachedMemory();
          const message = e instanceof Error ? e.message : String(e);
          void connection.sendNotification(JobEndedNotification, { jobId: id, reason: 'failed', step: current.step, checkpoint: lastCheckpoint, error: message });
          return { step: current.step, checkpoint: lastCheckpoint };
        },
      );
      job = current;
      await startup;
      return { jobId: id, backend: { name: report.name, device: report.device } };
    }),
  );

  connection.onRequest(
    TrainStopRequest,
    handle(async (raw) => {
      const p = P.object(raw, 'ddpm/trainStop');
      const jobId = P.str(p, 'jobId');
      if (!job || job.id !== jobId) throw new ResponseError(ErrorCodes.NoSuchJob, `no running training job ${jobId}`);
      const j = job;
      j.controller.abort();
      const r = await j.done;
      if (!r.checkpoint) throw new ResponseError(ErrorCodes.InternalError, `job ${jobId} stopped without a checkpoint`);
      return { step: r.step, checkpoint: r.checkpoint };
    }),
  );

  connection.onRequest(
    SampleRequest,
    handle(async (raw, token) => {
      const p = P.object(raw, 'ddpm/sample');
      const checkpoint = P.str(p, 'checkpoint');
      const n = P.int(p, 'n', 16, 1, 1024);
      const sampler = P.oneOf(p, 'sampler', ['ddim', 'ddpm'] as const, 'ddim');
      const steps = P.int(p, 'steps', 50, 1, 1000);
      const eta = P.num(p, 'eta', 0, 0, 10);
      const seed = P.int(p, 'seed', 0, 0, 2 ** 32 - 1);
      const useEma = P.bool(p, 'ema', true);
      const frames = P.int(p, 'frames', 0, 0, 1000);
      const tok = P.optional(p, 'token', () => P.str(p, 'token'));
      const workers = p.workers === undefined || p.workers === 'auto' ? 'auto' : P.int(p, 'workers', undefined, 1, 64);
      await ensureBackend();
      const { meta, params } = weightsOf(checkpoint, useEma);
      const c = meta.model;
      const dims = { height: c.imageSize, width: c.imageSize, channels: c.channels };
      const cols = Math.ceil(Math.sqrt(n));
      const t0 = Date.now();
      try {
        const r = await sampleImages(params, c, meta.schedule, {
          n,
          sampler,
          steps,
          eta,
          seed,
          frames,
          workers,
          onWarning: (m) => log('warn', m),
          signal: abortOn(token).signal,
          onStep: (s) => {
            void connection.sendNotification(SampleProgressNotification, { token: tok, step: s.index, total: s.total, t: s.t });
          },
          onFrame: async (f) => {
            const [xt, x0] = await Promise.all([encodeGrid({ data: f.xt, n, ...dims }, cols), encodeGrid({ data: f.predX0, n, ...dims }, cols)]);
            void connection.sendNotification(SampleProgressNotification, { token: tok, step: f.index, total: -1, t: f.t, frame: { index: f.index, xt: b64(xt), x0: b64(x0) } });
          },
        });
        const per = c.imageSize * c.imageSize * c.channels;
        const images = await Promise.all(Array.from({ length: n }, (_, i) => encodeGrid({ data: r.images.subarray(i * per, (i + 1) * per), n: 1, ...dims }, 1, 0)));
        return { images: images.map(b64), grid: b64(await encodeGrid({ data: r.images, n, ...dims }, cols)), imageSize: c.imageSize, channels: c.channels, seconds: (Date.now() - t0) / 1000, threads: r.threads };
      } finally {
        tf.dispose([...params.values()]);
        releaseCachedMemory();
      }
    }),
  );

  connection.onRequest(
    InterpolateRequest,
    handle(async (raw, token) => {
      const p = P.object(raw, 'ddpm/interpolate');
      const checkpoint = P.str(p, 'checkpoint');
      const files = [P.str(p, 'imageA'), P.str(p, 'imageB')];
      const t = P.int(p, 't', 500, 0, 100000);
      const lambdas = (p.lambdas ?? [0, 0.25, 0.5, 0.75, 1]) as unknown;
      if (!Array.isArray(lambdas) || lambdas.length === 0 || lambdas.some((l) => typeof l !== 'number' || !(l >= 0 && l <= 1))) {
        throw P.invalid(`field 'lambdas' must be a non-empty list of numbers in [0, 1]`);
      }
      const sampler = P.oneOf(p, 'sampler', ['ddim', 'ddpm'] as const, 'ddim');
      const steps = P.int(p, 'steps', 50, 1, 1000);
      const seed = P.int(p, 'seed', 0, 0, 2 ** 32 - 1);
      const tok = P.optional(p, 'token', () => P.str(p, 'token'));
      const workers = p.workers === undefined || p.workers === 'auto' ? 'auto' : P.int(p, 'workers', undefined, 1, 64);
      for (const f of files) mustExist(f, 'image');
      await ensureBackend();
      const { meta, params } = weightsOf(checkpoint, true);
      const c: UNetConfig = meta.model;
      if (t >= meta.schedule.T) {
        tf.dispose([...params.values()]);
        throw P.invalid(`field 't' must be below T = ${meta.schedule.T}`);
      }
      const dims = { height: c.imageSize, width: c.imageSize, channels: c.channels };
      const shape: [number, number, number, number] = [1, c.imageSize, c.imageSize, c.channels];
      let inputs: Float32Array[];
      try {
        inputs = await Promise.all(
          files.map((f) =>
            loadImage(f, c.imageSize, c.channels as 1 | 3).catch((e: Error) => {
              throw new ResponseError(ErrorCodes.BadInput, `${f}: not a readable image (${e.message})`);
            }),
          ),
        );
      } catch (e) {
        tf.dispose([...params.values()]);
        throw e;
      }
      const [x1, x2] = inputs.map((d) => tf.tensor4d(d, shape));
      try {
        const batch = Math.min((lambdas as number[]).length, INTERPOLATION_BATCH);
        const strip = await withSamplingThreads(params, c, meta.schedule, batch, { workers, onWarning: (m) => log('warn', m) }, (eps) =>
          interpolate(eps, new GaussianDiffusion(makeSchedule(meta.schedule)), x1, x2, t, lambdas as number[], {
            sampler,
            steps,
            seed,
            signal: abortOn(token).signal,
            onProgress: (step, total) => {
              void connection.sendNotification(InterpolateProgressNotification, { token: tok, step, total });
            },
          }),
        );
        const outs = await Promise.all(strip.map(async (s) => (await s.data()) as Float32Array));
        tf.dispose(strip);
        const per = c.imageSize * c.imageSize * c.channels;
        const all = new Float32Array((outs.length + 2) * per);
        all.set(inputs[0], 0);
        outs.forEach((o, i) => all.set(o, (i + 1) * per));
        all.set(inputs[1], (outs.length + 1) * per);
        const one = (d: Float32Array) => encodeGrid({ data: d, n: 1, ...dims }, 1, 0).then(b64);
        return {
          images: await Promise.all(outs.map(one)),
          inputs: [await one(inputs[0]), await one(inputs[1])] as [string, string],
          strip: b64(await encodeGrid({ data: all, n: outs.length + 2, ...dims }, outs.length + 2)),
        };
      } finally {
        tf.dispose([x1, x2, ...params.values()]);
        releaseCachedMemory();
      }
    }),
  );

  connection.onRequest(
    InspectRequest,
    handle(async (raw): Promise<InspectResult> => {
      const p = P.object(raw, 'ddpm/inspect');
      const file = P.str(p, 'path');
      mustExist(file, 'file');
      const h = readHeader(file);
      const meta = readCheckpointMeta(h);
      const params = h.tensors.filter((t) => !meta || t.name.startsWith('model.')).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
      return {
        path: file,
        fileSize: h.fileSize,
        format: meta ? CHECKPOINT_FORMAT : null,
        ...(meta
          ? { kind: meta.kind, preset: meta.preset, model: { ...meta.model }, schedule: { ...meta.schedule }, step: meta.step, data: meta.data, backend: meta.backend, created: meta.created }
          : {}),
        params,
        tensors: h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
        lossHistory: meta?.lossHistory ?? null,
        metadata: meta ? {} : h.metadata,
      };
    }),
  );

  connection.onRequest(
    TensorStatsRequest,
    handle(async (raw): Promise<TensorStatsResult> => {
      const p = P.object(raw, 'ddpm/tensorStats');
      const file = P.str(p, 'path');
      const name = P.str(p, 'name');
      const bins = P.int(p, 'bins', 64, 1, 4096);
      mustExist(file, 'file');
      const h = readHeader(file);
      const entry = h.tensors.find((t) => t.name === name);
      if (!entry) throw new ResponseError(ErrorCodes.NotFound, `${file} has no tensor '${name}'`);
      const v = readTensorF32(h, entry);
      let min = Infinity;
      let max = -Infinity;
      let sum = 0;
      for (const x of v) {
        if (x < min) min = x;
        if (x > max) max = x;
        sum += x;
      }
      const mean = v.length ? sum / v.length : 0;
      let sq = 0;
      for (const x of v) sq += (x - mean) ** 2;
      const counts = new Array<number>(bins).fill(0);
      const width = max > min ? (max - min) / bins : 1;
      for (const x of v) counts[Math.min(bins - 1, Math.floor((x - min) / width))]++;
      return {
        name,
        dtype: entry.dtype,
        shape: entry.shape,
        count: v.length,
        min: v.length ? min : 0,
        max: v.length ? max : 0,
        mean,
        std: v.length ? Math.sqrt(sq / v.length) : 0,
        histogram: { edges: Array.from({ length: bins + 1 }, (_, i) => (v.length ? min + i * width : 0)), counts },
      };
    }),
  );

  connection.onRequest(
    EmaDiffRequest,
    handle(async (raw) => {
      const p = P.object(raw, 'ddpm/emaDiff');
      const file = P.str(p, 'path');
      mustExist(file, 'file');
      const h = readHeader(file);
      const byName = new Map(h.tensors.map((t) => [t.name, t]));
      let num = 0;
      let den = 0;
      const per: { name: string; relative: number }[] = [];
      for (const t of h.tensors) {
        if (!t.name.startsWith('model.')) continue;
        const e = byName.get(`ema.${t.name.slice(6)}`);
        if (!e) continue;
        const a = readTensorF32(h, t);
        const b = readTensorF32(h, e);
        let n = 0;
        let d = 0;
        for (let i = 0; i < a.length; i++) {
          n += (b[i] - a[i]) ** 2;
          d += a[i] ** 2;
        }
        num += n;
        den += d;
        // The ranking covers weight matrices and filters: biases and norm offsets start at 0, so their relative
        // difference is large and says nothing.
        if (t.shape.length >= 2) per.push({ name: t.name.slice(6), relative: d > 0 ? Math.sqrt(n / d) : Math.sqrt(n) });
      }
      if (per.length === 0) return null;
      per.sort((x, y) => y.relative - x.relative);
      return { relative: den > 0 ? Math.sqrt(num / den) : 0, top: per.slice(0, 10) };
    }),
  );

  return {
    /** Stops a running training job (saving a checkpoint) before the process goes. */
    shutdown: async () => {
      if (job) {
        job.controller.abort();
        await job.done;
      }
    },
  };
}

