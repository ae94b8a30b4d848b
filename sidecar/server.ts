/**
 * The sidecar's request handlers: each protocol method validates its params with the method's schema
 * (protocol.ts), calls a job (sidecar/jobs/) and turns its results, progress and errors into JSON-RPC. One training
 * job at a time; sampling and inspection are served while it runs (the jobs interleave at step boundaries on the one
 * compute device, and never share tensors).
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import {
  ResponseError,
  type CancellationToken,
  type MessageConnection,
  type NotificationType,
  type RequestType,
} from 'vscode-jsonrpc';
import type { z } from 'zod';
import { initBackend, releaseCachedMemory, type BackendChoice } from './backend.ts';
import { classifyError, type ErrorKind } from './jobs/errors.ts';
import { evaluateCheckpoint } from './jobs/evaluate.ts';
import { importDiffusers } from './jobs/importModel.ts';
import { presetSummaries } from './jobs/info.ts';
import { emaDiff, inspectCheckpoint, tensorStats } from './jobs/inspect.ts';
import { interpolateImages } from './jobs/interpolate.ts';
import { inpaintImage, type EditJobResult } from './jobs/inpaint.ts';
import { img2img } from './jobs/img2img.ts';
import { sampleCheckpoint } from './jobs/sampleCheckpoint.ts';
import { trainRunState } from './jobs/trainRun.ts';
import { TrainingSlot } from './jobs/trainSession.ts';
import * as P from './protocol.ts';
import { parseParams } from './validation.ts';

const VERSION = '0.1.0';
/** Training progress notifications per second, at most. */
const PROGRESS_HZ = 10;

export interface ServerOptions {
  backend: BackendChoice;
  /** Folders to look for tfjs-node(-gpu) in (sidecar --native-path). */
  nativeSearchPaths?: string[];
}

const CODES: Record<ErrorKind, number> = {
  params: P.ErrorCodes.InvalidParams,
  'not-found': P.ErrorCodes.NotFound,
  'bad-input': P.ErrorCodes.BadInput,
  backend: P.ErrorCodes.BackendUnavailable,
  cancelled: P.ErrorCodes.RequestCancelled,
  'job-running': P.ErrorCodes.JobRunning,
  'no-such-job': P.ErrorCodes.NoSuchJob,
  internal: P.ErrorCodes.InternalError,
};

/** Maps a job's error to a protocol error with a clear message. */
export function toResponseError(e: unknown): ResponseError<void> {
  if (e instanceof ResponseError) return e;
  const kind = classifyError(e);
  return new ResponseError(
    CODES[kind],
    kind === 'cancelled' ? 'cancelled' : e instanceof Error ? e.message : String(e),
  );
}

const b64 = (buf: Buffer) => buf.toString('base64');

/**
 * What the connections of one sidecar process share when it serves several clients (socket mode): the training job,
 * whose notifications go to every connected client (one that attaches later asks ddpm/trainRun for what it missed).
 */
export interface SharedTraining {
  training: TrainingSlot;
  broadcast: <P>(type: NotificationType<P>, params: P) => void;
}

export function registerHandlers(
  connection: MessageConnection,
  opts: ServerOptions,
  shared?: SharedTraining,
): { shutdown: () => Promise<void>; dispose: () => void } {
  const training = shared?.training ?? new TrainingSlot();
  const notifyTraining =
    shared?.broadcast ?? (<P>(type: NotificationType<P>, params: P) => void connection.sendNotification(type, params));
  // Requests of this connection (sampling, evaluation) stop when it closes: their client is gone.
  const closed = new AbortController();
  const log = (level: P.LogParams['level'], message: string) =>
    // A client that went away (socket mode) must not turn a job's log line into an unhandled rejection.
    void connection.sendNotification(P.LogNotification, { level, message }).catch(() => undefined);
  const warn = (m: string) => log('warn', m);
  const ensureBackend = () => initBackend(opts.backend, { nativeSearchPaths: opts.nativeSearchPaths ?? [] });
  const signalOf = (token: CancellationToken): AbortSignal => {
    const ac = new AbortController();
    if (token.isCancellationRequested || closed.signal.aborted) ac.abort();
    token.onCancellationRequested(() => ac.abort());
    closed.signal.addEventListener('abort', () => ac.abort(), { once: true });
    return ac.signal;
  };
  /** A handler: params validated by `schema`, errors mapped, the backend's cached memory released after compute. */
  const on = <Params, S extends z.ZodType, R>(
    type: RequestType<Params, R, void>,
    schema: S,
    f: (o: z.output<S>, token: CancellationToken) => Promise<R>,
    compute = false,
  ) =>
    connection.onRequest(type, async (raw: Params, token: CancellationToken) => {
      try {
        return await f(parseParams(schema, raw, undefined, `${type.method}: params`), token);
      } catch (e) {
        const r = toResponseError(e);
        if (r.code === P.ErrorCodes.InternalError) log('error', `internal error: ${(e as Error).stack ?? r.message}`);
        return r;
      } finally {
        if (compute) releaseCachedMemory();
      }
    });

  on(P.InfoRequest, P.InfoParamsSchema, async (): Promise<P.InfoResult> => {
    const report = await ensureBackend();
    const job = training.current;
    return {
      version: VERSION,
      protocol: P.PROTOCOL_VERSION,
      node: process.version,
      tfjs: tf.version.tfjs,
      backend: { name: report.name, device: report.device, attempts: report.attempts },
      presets: presetSummaries(),
      training: job ? { jobId: job.id, step: job.step, steps: job.steps } : null,
    };
  });

  on(P.TrainRequest, P.TrainParamsSchema, async (o) => {
    const report = await ensureBackend();
    let jobId = '';
    let lastSent = 0;
    const job = await training.start(
      o,
      { name: report.name, device: report.device },
      {
        onProgress: (p) => {
          const now = Date.now();
          if (now - lastSent < 1000 / PROGRESS_HZ && p.step !== p.steps) return;
          lastSent = now;
          notifyTraining(P.TrainProgressNotification, { jobId, ...p });
        },
        onEvent: (e) => {
          if (e.type === 'checkpoint')
            notifyTraining(P.CheckpointSavedNotification, { jobId, step: e.step, path: e.path });
          else if (e.type === 'samples')
            notifyTraining(P.TrainPreviewNotification, {
              jobId,
              step: e.step,
              path: e.path,
              png: b64(fs.readFileSync(e.path)),
            });
          else if (e.type === 'eval')
            notifyTraining(P.TrainEvalNotification, {
              jobId,
              step: e.step,
              loss: e.loss,
              byT: e.byT,
              images: e.images,
              split: e.split,
            });
          else if (e.type === 'resumed') log('info', `job ${jobId}: resumed from ${e.path} at step ${e.step}`);
          else
            warn(
              `job ${jobId}: skipped ${e.count} file(s) that are not readable images, e.g. ${e.examples.join('; ')}`,
            );
        },
        onEnded: (e) => {
          releaseCachedMemory();
          notifyTraining(P.JobEndedNotification, { jobId, ...e });
        },
      },
    );
    jobId = job.id;
    return { jobId, backend: { name: report.name, device: report.device } };
  });

  on(P.TrainRunRequest, P.TrainRunParamsSchema, async (o) => trainRunState(training, o.out));

  on(P.TrainStopRequest, P.TrainStopParamsSchema, async (o) => {
    const r = await training.stop(o.jobId);
    if (!r.checkpoint)
      throw new ResponseError(P.ErrorCodes.InternalError, `job ${o.jobId} stopped without a checkpoint`);
    return { step: r.step, checkpoint: r.checkpoint };
  });

  on(
    P.SampleRequest,
    P.SampleParamsSchema,
    async (o, token) => {
      await ensureBackend();
      const notify = (p: Omit<P.SampleProgressParams, 'token'>) =>
        void connection.sendNotification(P.SampleProgressNotification, { token: o.token, ...p });
      const r = await sampleCheckpoint({
        ...o,
        signal: signalOf(token),
        onWarning: warn,
        onStep: (s) => notify({ step: s.index, total: s.total, t: s.t }),
        onFrame: (f) =>
          notify({ step: f.index, total: -1, t: f.t, frame: { index: f.index, xt: b64(f.xt), x0: b64(f.x0) } }),
      });
      return {
        images: r.images.map(b64),
        grid: b64(r.grid),
        imageSize: r.imageSize,
        channels: r.channels,
        seconds: r.seconds,
        threads: r.threads,
        ...(r.labels ? { labels: r.labels, classes: r.classes } : {}),
      };
    },
    true,
  );

  on(
    P.InterpolateRequest,
    P.InterpolateParamsSchema,
    async (o, token) => {
      await ensureBackend();
      const r = await interpolateImages({
        ...o,
        signal: signalOf(token),
        onWarning: warn,
        onProgress: (step, total) =>
          void connection.sendNotification(P.InterpolateProgressNotification, { token: o.token, step, total }),
      });
      return { images: r.images.map(b64), inputs: [b64(r.inputs[0]), b64(r.inputs[1])], strip: b64(r.strip) };
    },
    true,
  );

  /** ddpm/inpaint and ddpm/img2img: steps and frames as ddpm/editProgress, the PNGs as base64. */
  const editCallbacks = (o: { token?: string }, token: CancellationToken) => {
    const notify = (p: Omit<P.EditProgressParams, 'token'>) =>
      void connection.sendNotification(P.EditProgressNotification, { token: o.token, ...p });
    return {
      signal: signalOf(token),
      onWarning: warn,
      onStep: (s: { index: number; total: number; t: number; up?: boolean }) =>
        notify({ step: s.index, total: s.total, t: s.t, ...(s.up ? { up: true } : {}) }),
      onFrame: (f: { index: number; t: number; xt: Buffer; x0: Buffer }) =>
        notify({ step: f.index, total: -1, t: f.t, frame: { index: f.index, xt: b64(f.xt), x0: b64(f.x0) } }),
    };
  };
  const editResult = (r: EditJobResult): P.EditResult => ({
    images: r.images.map(b64),
    grid: b64(r.grid),
    input: b64(r.input),
    ...(r.mask ? { mask: b64(r.mask) } : {}),
    imageSize: r.imageSize,
    channels: r.channels,
    modelSteps: r.modelSteps,
    seconds: r.seconds,
    threads: r.threads,
    ...(r.labels ? { labels: r.labels, classes: r.classes } : {}),
  });
  on(
    P.InpaintRequest,
    P.InpaintParamsSchema,
    async (o, token) => {
      await ensureBackend();
      return editResult(await inpaintImage({ ...o, ...editCallbacks(o, token) }));
    },
    true,
  );
  on(
    P.Img2ImgRequest,
    P.Img2ImgParamsSchema,
    async (o, token) => {
      await ensureBackend();
      return editResult(await img2img({ ...o, ...editCallbacks(o, token) }));
    },
    true,
  );

  on(
    P.EvaluateRequest,
    P.EvaluateParamsSchema,
    async (o, token) => {
      await ensureBackend();
      let lastSent = 0;
      return evaluateCheckpoint({
        ...o,
        signal: signalOf(token),
        onWarning: warn,
        onProgress: (p) => {
          const now = Date.now();
          if (now - lastSent < 1000 / PROGRESS_HZ && p.done !== p.total) return;
          lastSent = now;
          void connection.sendNotification(P.EvaluateProgressNotification, { token: o.token, ...p });
        },
      });
    },
    true,
  );

  on(P.InspectRequest, P.InspectParamsSchema, async (o) => inspectCheckpoint(o.path));
  on(P.ImportRequest, P.ImportParamsSchema, async (o) => importDiffusers(o));
  on(P.TensorStatsRequest, P.TensorStatsParamsSchema, async (o) => tensorStats(o.path, o.name, o.bins));
  on(P.EmaDiffRequest, P.EmaDiffParamsSchema, async (o) => emaDiff(o.path));

  return {
    /** Stops a running training job (saving a checkpoint) before the process goes. */
    shutdown: () => training.shutdown(),
    /** The connection is gone: its own requests stop (the shared training job goes on). */
    dispose: () => closed.abort(),
  };
}
