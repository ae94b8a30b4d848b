/**
 * THE sidecar protocol: JSON-RPC 2.0 with the Language Server Protocol's base framing (Content-Length headers), over
 * stdio (`node dist/sidecar.js --stdio`) or Node IPC (`--node-ipc`). Method names, parameter and result types,
 * notifications and error codes are declared here once; the extension imports this file.
 *
 * Images travel as base64 PNG. Long-running requests report through notifications that carry the client's
 * `token` (sampling, interpolation) or the `jobId` (training). `$/cancelRequest` cancels sampling and
 * interpolation within one denoising step; the request then fails with RequestCancelled.
 */
import { NotificationType, RequestType } from 'vscode-jsonrpc';

export const PROTOCOL_VERSION = 1;

export const ErrorCodes = {
  /** JSON-RPC: the params are malformed; the message names the field. */
  InvalidParams: -32602,
  InternalError: -32603,
  /** LSP: the request was cancelled by the client. */
  RequestCancelled: -32800,
  /** A checkpoint, image or data path does not exist. */
  NotFound: -32001,
  /** A file exists but is not what was asked for (corrupt or foreign checkpoint, not an image, bad dataset). */
  BadInput: -32002,
  /** A training job is already running in this sidecar (one at a time). */
  JobRunning: -32003,
  /** No such job (finished, or never started). */
  NoSuchJob: -32004,
  /** The requested compute backend cannot be used. */
  BackendUnavailable: -32005,
} as const;

// ---- ddpm/info ----------------------------------------------------------------------------------------------------

export interface InfoResult {
  version: string;
  protocol: number;
  node: string;
  tfjs: string;
  /** The backend in use, its device, and why the others were passed over. */
  backend: { name: string; device: string; attempts: { name: string; ok: boolean; reason?: string }[] };
  presets: { name: string; params: number; imageSize: number; channels: number }[];
  /** Whether a training job is running, and which. */
  training: { jobId: string; step: number; steps: number } | null;
}
export const InfoRequest = new RequestType<Record<string, never> | null, InfoResult, void>('ddpm/info');

// ---- training -----------------------------------------------------------------------------------------------------

export interface TrainParams {
  /** 'mnist', 'idx:PATH', 'cifar10:PATH' or 'folder:PATH'. */
  data: string;
  preset: string;
  steps: number;
  batch: number;
  /** Run folder (created if missing). */
  out: string;
  resume?: boolean;
  saveEvery?: number;
  sampleEvery?: number;
  keep?: number;
  seed?: number;
  lr?: number;
  warmup?: number;
  emaDecay?: number;
  microBatch?: number;
  /** Threads computing gradients on the CPU backends: a number (1–64) or 'auto' (default: one per core for models big enough to gain). */
  workers?: number | 'auto';
  flip?: boolean;
}
export interface TrainResult {
  jobId: string;
  /** The compute backend the job trains on and its device (as in ddpm/info), e.g. to suggest a faster one. */
  backend: { name: string; device: string };
}
export const TrainRequest = new RequestType<TrainParams, TrainResult, void>('ddpm/train');

export interface TrainStopParams {
  jobId: string;
}
export interface TrainStopResult {
  step: number;
  checkpoint: string;
}
export const TrainStopRequest = new RequestType<TrainStopParams, TrainStopResult, void>('ddpm/trainStop');

/** At most 10 per second per job. */
export interface TrainProgressParams {
  jobId: string;
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Steps per second (smoothed). */
  itPerSec: number;
  etaSeconds: number;
  /** Threads that computed the last step's gradients (more than 1 only on the CPU backends, with workers). */
  threads: number;
  lastCheckpoint: string | null;
}
export const TrainProgressNotification = new NotificationType<TrainProgressParams>('ddpm/trainProgress');

export interface TrainPreviewParams {
  jobId: string;
  step: number;
  /** The sample grid file, and its PNG bytes. */
  path: string;
  png: string;
}
export const TrainPreviewNotification = new NotificationType<TrainPreviewParams>('ddpm/trainPreview');

export interface CheckpointSavedParams {
  jobId: string;
  step: number;
  path: string;
}
export const CheckpointSavedNotification = new NotificationType<CheckpointSavedParams>('ddpm/checkpointSaved');

export interface JobEndedParams {
  jobId: string;
  reason: 'done' | 'stopped' | 'failed';
  step: number;
  checkpoint: string | null;
  error?: string;
}
export const JobEndedNotification = new NotificationType<JobEndedParams>('ddpm/jobEnded');

// ---- sampling -----------------------------------------------------------------------------------------------------

export interface SampleParams {
  checkpoint: string;
  n: number;
  sampler?: 'ddpm' | 'ddim';
  /** DDIM steps (default 50). */
  steps?: number;
  eta?: number;
  seed?: number;
  /** Use the EMA weights (default true when the checkpoint has them). */
  ema?: boolean;
  /** Trajectory frames to stream (x_t and x̂0 grids), 0 for none. */
  frames?: number;
  /** Echoed in ddpm/sampleProgress so that a client can tell runs apart. */
  token?: string;
  /** Threads running the model on the CPU backends: a number (1–64) or 'auto' (default: one per core, up to one per image, for models big enough to gain). */
  workers?: number | 'auto';
}
export interface SampleResult {
  /** One PNG per image. */
  images: string[];
  /** All images in one grid. */
  grid: string;
  imageSize: number;
  channels: number;
  seconds: number;
  /** Threads the model ran on. */
  threads: number;
}
export const SampleRequest = new RequestType<SampleParams, SampleResult, void>('ddpm/sample');

export interface SampleProgressParams {
  token?: string;
  /** 0-based step index, and the number of steps. */
  step: number;
  total: number;
  t: number;
  /** On the requested frames: the grid of x_t and of x̂0 (base64 PNG). */
  frame?: { index: number; xt: string; x0: string };
}
export const SampleProgressNotification = new NotificationType<SampleProgressParams>('ddpm/sampleProgress');

// ---- interpolation ------------------------------------------------------------------------------------------------

export interface InterpolateParams {
  checkpoint: string;
  imageA: string;
  imageB: string;
  t?: number;
  lambdas?: number[];
  sampler?: 'ddpm' | 'ddim';
  steps?: number;
  seed?: number;
  token?: string;
  /** Threads running the model on the CPU backends (the λ of a strip are denoised together, one batch): as in ddpm/sample. */
  workers?: number | 'auto';
}
export interface InterpolateResult {
  /** One PNG per λ, in order. */
  images: string[];
  /** The converted inputs as the model sees them. */
  inputs: [string, string];
  /** Input a, the interpolations, input b. */
  strip: string;
}
export const InterpolateRequest = new RequestType<InterpolateParams, InterpolateResult, void>('ddpm/interpolate');

/** All λ of a strip are denoised together: progress counts denoising steps. */
export interface InterpolateProgressParams {
  token?: string;
  /** 0-based index of the step just taken, and the number of steps. */
  step: number;
  total: number;
}
export const InterpolateProgressNotification = new NotificationType<InterpolateProgressParams>('ddpm/interpolateProgress');

// ---- checkpoints --------------------------------------------------------------------------------------------------

export interface InspectParams {
  path: string;
}
export interface InspectResult {
  path: string;
  fileSize: number;
  /** 'ddpm-studio/1', or null for a foreign safetensors file. */
  format: string | null;
  kind?: 'training' | 'weights';
  preset?: string;
  model?: Record<string, unknown>;
  schedule?: Record<string, unknown>;
  step?: number;
  data?: { source: string; size: number };
  backend?: string;
  created?: string;
  params: number;
  tensors: { name: string; dtype: string; shape: number[] }[];
  lossHistory: { steps: number[]; loss: number[] } | null;
  metadata: Record<string, string>;
}
export const InspectRequest = new RequestType<InspectParams, InspectResult, void>('ddpm/inspect');

export interface TensorStatsParams {
  path: string;
  name: string;
  bins?: number;
}
export interface TensorStatsResult {
  name: string;
  dtype: string;
  shape: number[];
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  histogram: { edges: number[]; counts: number[] };
}
export const TensorStatsRequest = new RequestType<TensorStatsParams, TensorStatsResult, void>('ddpm/tensorStats');

export interface EmaDiffParams {
  path: string;
}
export interface EmaDiffResult {
  /** ‖ema − model‖ / ‖model‖ over all parameters. */
  relative: number;
  /** The tensors that differ most, relatively. */
  top: { name: string; relative: number }[];
}
export const EmaDiffRequest = new RequestType<EmaDiffParams, EmaDiffResult | null, void>('ddpm/emaDiff');

export interface LogParams {
  level: 'info' | 'warn' | 'error';
  message: string;
}
export const LogNotification = new NotificationType<LogParams>('ddpm/log');
