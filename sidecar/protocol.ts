/**
 * THE sidecar protocol: JSON-RPC 2.0 with the Language Server Protocol's base framing (Content-Length headers), over
 * stdio (`node dist/sidecar.js --stdio`) or Node IPC (`--node-ipc`). Method names, parameter and result types,
 * notifications and error codes are declared here once; the extension imports this file.
 *
 * Images travel as base64 PNG. Long-running requests report through notifications that carry the client's
 * `token` (sampling, interpolation) or the `jobId` (training). `$/cancelRequest` cancels sampling and
 * interpolation within one denoising step; the request then fails with RequestCancelled.
 *
 * Each request's parameters are a zod schema: the TypeScript types (`…Params` what a client sends, `…Options` what
 * a handler gets, defaults filled in), the defaults, the bounds and the error messages all come from it. The sidecar
 * validates every request with it, the CLI maps its flags onto it, the extension's settings default to its values
 * (a test holds package.json to them) and its input boxes validate with it.
 */
import { NotificationType, RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import { LIMITS } from './limits.ts';
import { bool, int, num, oneOf, str, workers } from './validation.ts';

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
export const InfoParamsSchema = z.object({});
export const InfoRequest = new RequestType<Record<string, never> | null, InfoResult, void>('ddpm/info');

// ---- training -----------------------------------------------------------------------------------------------------

/** The model presets (sidecar/ddpm/unet.ts defines them; a test holds the two lists equal). */
export const PRESET_NAMES = ['mnist', 'tiny', 'cifar10', 'celebahq256'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Seeds are 32-bit: the generator's state is seeded from one. */
const seed = () => int(0, 2 ** 32 - 1);

/**
 * The optimisation recipe a new run gets for what its request leaves out. A resumed run keeps its checkpoint's
 * recipe instead, except for what the request sets, which is why these fields are optional in TrainParamsSchema.
 */
export const TrainRecipeSchema = z.object({
  /** Adam's learning rate (the paper: 2e-4). */
  lr: num(0, 1, true).default(2e-4),
  /** Linear learning-rate warm-up steps (the paper: 5000 at batch 128; short CPU runs want fewer). */
  warmup: int(0).default(500),
  /** EMA decay of the sampled weights (the paper: 0.9999 over 800k steps; 0.999 suits runs of a few thousand). */
  emaDecay: num(0, 0.999999999).default(0.999),
  /** Largest images per forward/backward pass; a larger batch accumulates gradients (0: the whole batch). */
  microBatch: int(0).default(0),
  /** Warm the EMA up ((1 + step)/(10 + step), capped by emaDecay) so that short runs sample from trained weights. */
  emaWarmup: bool().default(true),
  /** Conditional models: the share of images trained as "no class" (Ho & Salimans 2022: 0.1). */
  classDropout: num(0, 0.99).default(0.1),
});
export type TrainRecipe = z.output<typeof TrainRecipeSchema>;

export const TrainParamsSchema = z.object({
  /** 'mnist', 'idx:PATH', 'cifar10:PATH' or 'folder:PATH'. */
  data: str(),
  preset: oneOf(PRESET_NAMES).default('mnist'),
  /** Total steps of the run (a resumed run continues up to this). */
  steps: int(1, 1e9).default(2000),
  batch: int(1, 4096).default(16),
  /** Run folder (created if missing). */
  out: str(),
  /** Continue the run in `out` if it has a checkpoint. */
  resume: bool().default(false),
  /**
   * With resume: continue from this training checkpoint (e.g. an older ckpt-N of the run) instead of the run's
   * latest.safetensors. Its data must be the request's.
   */
  resumeFrom: str().optional(),
  /** Save a checkpoint every N steps (0: only at the end). */
  saveEvery: int(0).default(250),
  /** Write a preview grid every N steps (0: never). */
  sampleEvery: int(0).default(500),
  /**
   * Every N steps (0: never), the EMA weights' L_simple on a fixed small held-out batch at a fixed grid of t, with
   * fixed noise (ddpm/trainEval, eval.csv): a few forward passes; the trainer's generator is not touched.
   */
  evalEvery: int(0).default(0),
  /** Checkpoints kept besides latest.safetensors. */
  keep: int(1, 10000).default(3),
  seed: seed().default(0),
  /** Threads computing gradients on the CPU backends: 1–64, or 'auto' (one per core for models big enough to gain). */
  workers: workers().default('auto'),
  lr: TrainRecipeSchema.shape.lr.unwrap().optional(),
  warmup: TrainRecipeSchema.shape.warmup.unwrap().optional(),
  emaDecay: TrainRecipeSchema.shape.emaDecay.unwrap().optional(),
  microBatch: TrainRecipeSchema.shape.microBatch.unwrap().optional(),
  emaWarmup: TrainRecipeSchema.shape.emaWarmup.unwrap().optional(),
  classDropout: TrainRecipeSchema.shape.classDropout.unwrap().optional(),
  /** Train a class-conditional model on the data's labels, for classifier-free guidance (a new run only). */
  conditional: bool().default(false),
  /** Random left–right flips; default: off for digit datasets (mnist, idx:), on otherwise; a resumed run keeps its own. */
  flip: bool().optional(),
});
export type TrainParams = z.input<typeof TrainParamsSchema>;
export type TrainOptions = z.output<typeof TrainParamsSchema>;

export interface TrainResult {
  jobId: string;
  /** The compute backend the job trains on and its device (as in ddpm/info), e.g. to suggest a faster one. */
  backend: { name: string; device: string };
}
export const TrainRequest = new RequestType<TrainParams, TrainResult, void>('ddpm/train');

export const TrainStopParamsSchema = z.object({ jobId: str() });
export type TrainStopParams = z.input<typeof TrainStopParamsSchema>;
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
  /** The step's loss by quarter of t (t < T/4, …, t ≥ 3T/4); null where the batch drew no t in that quarter. */
  lossByQuarter: (number | null)[];
  /** The run's number of diffusion steps T (what the quarters are quarters of). */
  T: number;
  lastCheckpoint: string | null;
}
export const TrainProgressNotification = new NotificationType<TrainProgressParams>('ddpm/trainProgress');

/**
 * With evalEvery: the EMA weights' ε-MSE (L_simple) on a fixed held-out batch (the first images of the data's test
 * split; a folder's own first images) with fixed noise, at a fixed grid of t: comparable from step to step.
 */
export interface TrainEvalParams {
  jobId: string;
  step: number;
  /** The mean over the grid of t (and the images). */
  loss: number;
  /** The mean over the images at each t of the grid. */
  byT: { t: number; loss: number }[];
  /** Images evaluated, and the part of the data they come from. */
  images: number;
  split: 'test' | 'all';
}
export const TrainEvalNotification = new NotificationType<TrainEvalParams>('ddpm/trainEval');

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

/**
 * ddpm/trainRun: a training run as a client that (re)attaches needs it — after a window reload, in a restored Training
 * view, or before resuming: the live job training it in this sidecar (if any), how the last job ended here, and what
 * its folder holds (the loss history of loss.csv, the held-out losses of eval.csv, the latest preview, the
 * checkpoints, and the request of run.json). Without `out`: the run of the job training now (null when none is).
 */
export const TrainRunParamsSchema = z.object({ out: str().optional() });
export type TrainRunParams = z.input<typeof TrainRunParamsSchema>;
export interface TrainRunResult {
  out: string;
  /** The job training this run now in this sidecar; its notifications follow. */
  job: { jobId: string; step: number; steps: number; backend: { name: string; device: string } } | null;
  /** How the last job of this run in this sidecar ended (null if none ended here). */
  ended: Omit<JobEndedParams, 'jobId'> | null;
  /** From the live job, else run.json, else the latest checkpoint (null where none says). */
  data: string | null;
  preset: string | null;
  /** The run's target number of steps (null where unknown). */
  steps: number | null;
  batch: number | null;
  /** The latest step trained (the live job's, else the latest checkpoint's; 0 for a run without one). */
  step: number;
  /** The step the live (or last) job resumed from; null for a new run. */
  resumedFrom: number | null;
  /** Diffusion steps T of the run's schedule (what the loss quarters are quarters of); null where unknown. */
  T: number | null;
  /** loss.csv, evenly thinned to at most 4,000 points (the last one kept): the loss, and by quarter of t. */
  history: { steps: number[]; loss: number[]; quarters: (number | null)[][] };
  /** eval.csv: the held-out loss of the EMA weights by step. */
  evals: { step: number; loss: number }[];
  /** The newest preview grid (samples/step-N.png) and its PNG bytes. */
  preview: { step: number; path: string; png: string } | null;
  /** ckpt-N.safetensors files, oldest first, and latest.safetensors (null if none). */
  checkpoints: { step: number; path: string }[];
  latest: string | null;
}
export const TrainRunRequest = new RequestType<TrainRunParams, TrainRunResult | null, void>('ddpm/trainRun');

// ---- sampling -----------------------------------------------------------------------------------------------------

export const SAMPLERS = ['ddim', 'ddpm'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** DDIM's timestep spacings (sidecar/ddpm/schedule.ts; a test holds the lists equal). */
export const DDIM_SPACINGS = ['trailing', 'linspace', 'leading'] as const;

/**
 * Which class a conditional model samples: a class index, 'each' (image i gets class i mod the number of classes:
 * every class, in order) or 'any' (no class: the model's unconditional distribution). Unconditional models ignore it.
 */
const classChoice = () =>
  z.union([z.literal('each'), z.literal('any'), int(0, 9999)], { error: 'must be a class number, each or any' });

/** Classifier-free guidance scale w: ε = (1 + w)·ε(x, c) − w·ε(x, ∅); 0 samples ε(x, c) alone. */
const guidanceScale = () => num(0, 20);

/** The sampler fields of ddpm/sample and ddpm/img2img: DDPM or DDIM, and DDIM's steps, spacing and η. */
const samplerFields = () => ({
  sampler: oneOf(SAMPLERS).default('ddim'),
  /** DDIM steps (DDPM always takes all T). */
  steps: int(1, LIMITS.steps).default(50),
  /** DDIM's timestep spacing: trailing and linspace start at T−1; leading is DDIM's original grid. */
  spacing: oneOf(DDIM_SPACINGS).default('trailing'),
  /**
   * DDIM's η: 0 deterministic, 1 as stochastic as DDPM. Default 1, by measurement (models/README.md): on the shipped
   * MNIST model η = 1 covers all 10 classes with black backgrounds where η = 0 covers 9 with grey ones.
   */
  eta: num(0, 10).default(1),
});

/**
 * The fields that ddpm/sample, ddpm/inpaint and ddpm/img2img end with: the noise's seed, a conditional model's class
 * (default: `defaultClass`) and guidance, which weights, the frames to stream, the progress token, the threads.
 */
const checkpointSamplingFields = (defaultClass: 'each' | 'any') => ({
  seed: seed().default(0),
  class: classChoice().default(defaultClass),
  guidance: guidanceScale().default(2),
  /** Use the EMA weights (when the checkpoint has them). */
  ema: bool().default(true),
  /** Trajectory frames to stream (x_t and x̂0 grids; an edit's on evenly spaced reverse steps), 0 for none. */
  frames: int(0, LIMITS.frames).default(0),
  /** Echoed in the request's progress notifications so that a client can tell runs apart. */
  token: str().optional(),
  /** Threads running the model on the CPU backends: 1–64 or 'auto' (one per core, up to one per image, for models big enough to gain). */
  workers: workers().default('auto'),
});

export const SampleParamsSchema = z.object({
  checkpoint: str(),
  n: int(1, LIMITS.n).default(16),
  ...samplerFields(),
  ...checkpointSamplingFields('each'),
});
export type SampleParams = z.input<typeof SampleParamsSchema>;
export type SampleOptions = z.output<typeof SampleParamsSchema>;

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
  /** A conditional model's class of each image (-1: none), and the class names. */
  labels?: number[];
  classes?: string[];
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

export const InterpolateParamsSchema = z.object({
  checkpoint: str(),
  imageA: str(),
  imageB: str(),
  /** The step both images are diffused to (below the checkpoint's T). */
  t: int(0, LIMITS.T - 1).default(500),
  lambdas: z
    .array(num(0, 1), { error: 'must be a list of numbers in [0, 1]' })
    .min(1, { error: 'must be a non-empty list of numbers in [0, 1]' })
    .max(256, { error: 'must hold at most 256 numbers' })
    .default([0, 0.25, 0.5, 0.75, 1]),
  sampler: oneOf(SAMPLERS).default('ddim'),
  steps: int(1, LIMITS.steps).default(50),
  spacing: oneOf(DDIM_SPACINGS).default('trailing'),
  seed: seed().default(0),
  ema: bool().default(true),
  token: str().optional(),
  /** Threads running the model on the CPU backends (the λ of a strip are denoised together, one batch): as in ddpm/sample. */
  workers: workers().default('auto'),
});
export type InterpolateParams = z.input<typeof InterpolateParamsSchema>;
export type InterpolateOptions = z.output<typeof InterpolateParamsSchema>;

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
export const InterpolateProgressNotification = new NotificationType<InterpolateProgressParams>(
  'ddpm/interpolateProgress',
);

// ---- editing: inpainting (RePaint) and image-to-image (SDEdit) ---------------------------------------------------

export const InpaintParamsSchema = z.object({
  checkpoint: str(),
  /** The image to inpaint (PNG, JPEG, WebP, …), converted to the checkpoint's size and channels as interpolation's. */
  image: str(),
  /**
   * Where to regenerate: white (above mid-grey) is regenerated, black kept. An image file of the image's shape
   * (resized and cropped as the image is), or a PNG as a `data:image/png;base64,` URL.
   */
  mask: str(),
  /** Inpaintings of the same image, each with its own noise. */
  n: int(1, 64).default(4),
  /** Timesteps of the schedule that RePaint walks (the paper: 250 of 1000; fewer is faster, respaced). */
  steps: int(1, 1000).default(50),
  /** RePaint's jump length j: how many steps each resampling goes back up (the paper: 10). */
  jumps: int(1, 1000).default(5),
  /** RePaint's r: how many times each jump point is passed (the paper: 10; 1 = no resampling, plain replacement). */
  resample: int(1, 100).default(5),
  /** A conditional model's class: as in ddpm/sample, but none ('any') unless asked, so that the image decides. */
  ...checkpointSamplingFields('any'),
});
export type InpaintParams = z.input<typeof InpaintParamsSchema>;
export type InpaintOptions = z.output<typeof InpaintParamsSchema>;

export const Img2ImgParamsSchema = z.object({
  checkpoint: str(),
  /** The guide: a photo or a rough sketch, converted to the checkpoint's size and channels. */
  image: str(),
  /** t₀/T: how far the guide is diffused before denoising; 0 returns it, 1 ignores it (plain sampling). */
  strength: num(0, 1).default(0.5),
  /** Edits of the same guide, each with its own noise. */
  n: int(1, 256).default(8),
  /** As in ddpm/sample, but DDIM steps over the whole chain: a run from t₀ takes those below t₀ (DDPM all t₀ of its own). */
  ...samplerFields(),
  /** The class: none ('any') unless asked, as in ddpm/inpaint. */
  ...checkpointSamplingFields('any'),
});
export type Img2ImgParams = z.input<typeof Img2ImgParamsSchema>;
export type Img2ImgOptions = z.output<typeof Img2ImgParamsSchema>;

/** An inpainting's or an edit's images, and its inputs as the model saw them. */
export interface EditResult {
  /** One PNG per image, and all of them in one grid. */
  images: string[];
  grid: string;
  /** The input converted to the checkpoint's size and channels, and (inpainting) the mask as used: white = regenerated. */
  input: string;
  mask?: string;
  imageSize: number;
  channels: number;
  /** Model evaluations per image (RePaint's reverse steps; SDEdit's steps from t₀). */
  modelSteps: number;
  seconds: number;
  threads: number;
  /** A conditional model's class of each image (-1: none), and the class names. */
  labels?: number[];
  classes?: string[];
}
export const InpaintRequest = new RequestType<InpaintParams, EditResult, void>('ddpm/inpaint');
export const Img2ImgRequest = new RequestType<Img2ImgParams, EditResult, void>('ddpm/img2img');

/**
 * Progress of ddpm/inpaint and ddpm/img2img: each step (RePaint's go down and up: `t` is the timestep left, `up` marks
 * a re-noising jump), and on the requested frames the x_t and x̂0 grids (x̂0 with the known pixels put back).
 */
export interface EditProgressParams {
  token?: string;
  step: number;
  total: number;
  t: number;
  up?: boolean;
  frame?: { index: number; xt: string; x0: string };
}
export const EditProgressNotification = new NotificationType<EditProgressParams>('ddpm/editProgress');

// ---- evaluation ---------------------------------------------------------------------------------------------------

export const EvaluateParamsSchema = z.object({
  checkpoint: str(),
  /** 'mnist', 'idx:PATH', 'cifar10:PATH' (their held-out images) or 'folder:PATH' (which has none: all of it). */
  data: str(),
  /** Images to evaluate, the first n of the held-out split; bits/dim takes T forward passes per image. */
  n: int(1, 10000).default(64),
  /** The variational bound in bits/dim, exact over all T, with its per-t terms. */
  bpd: bool().default(true),
  /** Sample quality (a classifier's confidence, coverage and Fréchet distance) for labelled datasets. */
  quality: bool().default(false),
  /** Seed of the noise of q(x_t|x_0), per image and t: the same seed gives the same numbers. */
  seed: seed().default(0),
  ema: bool().default(true),
  /** Echoed in ddpm/evaluateProgress. */
  token: str().optional(),
  /** Threads running the model on the CPU backends: as in ddpm/sample. */
  workers: workers().default('auto'),
});
export type EvaluateParams = z.input<typeof EvaluateParamsSchema>;
export type EvaluateOptions = z.output<typeof EvaluateParamsSchema>;

/** The variational bound (Ho et al. 2020, eq. 5) over the evaluated images, in bits/dim. */
export interface BpdResult {
  /** The bound: mean over the images, and its standard error (null for one image). */
  mean: number;
  stderr: number | null;
  /** Means over the images of the prior term L_T, the decoder term L_0 and the sum of the KL terms L_1 … L_{T−1}. */
  prior: number;
  decoder: number;
  kl: number;
  /** Each image's bound, in the order of `images`. */
  perImage: number[];
  /** σ_t² of p_θ(x_{t−1}|x_t): the one the DDPM sampler uses ('fixedlarge': β_t; 'fixedsmall': β̃_t). */
  variance: 'fixedlarge' | 'fixedsmall';
  /** Whether x̂_0 is clipped to [−1, 1] (as when sampling). */
  clip: boolean;
  /** Means over the images for each t = 0 … T−1: the term (L_0 at t = 0, else the KL) and the MSE of x̂_0 and of ε. */
  perT: { vb: number[]; x0Mse: number[]; epsMse: number[] };
  /** The same by quarter of t: the terms summed, the MSEs averaged. */
  quarters: { from: number; to: number; vb: number; x0Mse: number; epsMse: number }[];
}

/**
 * Sample quality (sidecar/quality/): n images sampled from the checkpoint (DDIM with ddpm/sample's defaults, the
 * evaluation's seed; a conditional model every class in turn, guided), judged by the classifier shipped for the
 * checkpoint's data (models/classifiers/: MNIST, Fashion-MNIST).
 */
export interface QualityResult {
  /** Images sampled and judged. */
  n: number;
  /** How they were sampled: a conditional model's classes ('each': image i gets class i mod K) and guidance. */
  sampling: { sampler: 'ddim'; steps: number; eta: number; seed: number; classes?: 'each'; guidance?: number };
  /** The classifier file, the data it was trained on and its accuracy on that data's held-out images. */
  classifier: { file: string; source: string; heldOutAccuracy: number };
  classes: string[];
  /** Mean over the images of the classifier's top softmax probability. */
  meanConfidence: number;
  /** Fraction of the images assigned to each class (argmax), in class order. */
  classHistogram: number[];
  /** Classes with at least `coverageThreshold` of the images (0.3 of the uniform share 1/K: 3 % for 10 classes). */
  coverage: number;
  coverageThreshold: number;
  /**
   * Fréchet distance between Gaussians fitted to the classifier's penultimate features of the samples and of the
   * data's held-out images (an FID for digits). Biased upwards at small n: compare distances at the same n only.
   */
  frechetDistance: number;
  /** The held-out images those real statistics summarise. */
  realImages: number;
  /** A conditional model: the fraction of images that the classifier assigns to the class they were sampled for. */
  classAgreement?: number;
  seconds: number;
}

export interface EvaluateResult {
  checkpoint: string;
  /** The checkpoint's step, and which weights were evaluated. */
  step: number;
  weights: string;
  /** The data source and the part of it evaluated: 'test' (held out), or 'all' for a folder, with a note saying so. */
  data: { source: string; split: 'test' | 'all'; note?: string };
  /** The indices of the evaluated images within that part. */
  images: number[];
  n: number;
  T: number;
  seed: number;
  bpd: BpdResult | null;
  /** With `quality`: the samples' quality numbers; else null. */
  quality: QualityResult | null;
  /** Forward passes of the model (one per image and t), the threads that ran them, and the backend. */
  forwardPasses: number;
  threads: number;
  backend: { name: string; device: string };
  seconds: number;
}
export const EvaluateRequest = new RequestType<EvaluateParams, EvaluateResult, void>('ddpm/evaluate');

export interface EvaluateProgressParams {
  token?: string;
  /** What is being computed; done of total units (for 'bpd': image forward passes, N·T; for 'quality': sampler steps). */
  stage: 'bpd' | 'quality';
  done: number;
  total: number;
}
export const EvaluateProgressNotification = new NotificationType<EvaluateProgressParams>('ddpm/evaluateProgress');

// ---- checkpoints --------------------------------------------------------------------------------------------------

/** A checkpoint's model: the U-Net's architecture (sidecar/ddpm/unet.ts UNetConfig). */
export interface ModelConfig {
  imageSize: number;
  channels: number;
  ch: number;
  chMult: number[];
  numResBlocks: number;
  attnResolutions: number[];
  dropout: number;
  groups: number;
  /** Class-conditional models: the number of classes. */
  numClasses?: number;
  /** Channels per attention head (absent: one head, as in the paper). */
  attnHeadDim?: number;
  /** The time embedding's frequency shift and sin/cos order, when not the paper's (1, sin first). */
  timeFreqShift?: number;
  timeFlipSinToCos?: boolean;
}

/** A checkpoint's noise schedule (sidecar/ddpm/schedule.ts ScheduleConfig). */
export interface ScheduleInfo {
  kind: 'linear' | 'cosine';
  T: number;
  betaStart?: number;
  betaEnd?: number;
  cosineS?: number;
  maxBeta?: number;
}

export const InspectParamsSchema = z.object({ path: str() });
export type InspectParams = z.input<typeof InspectParamsSchema>;
export interface InspectResult {
  path: string;
  fileSize: number;
  /** 'ddpm-studio/1', or null for a foreign safetensors file. */
  format: string | null;
  kind?: 'training' | 'weights';
  preset?: string;
  model?: ModelConfig;
  schedule?: ScheduleInfo;
  step?: number;
  data?: { source: string; size: number };
  backend?: string;
  created?: string;
  /** A class-conditional model's class names. */
  classes?: string[];
  params: number;
  tensors: { name: string; dtype: string; shape: number[] }[];
  lossHistory: { steps: number[]; loss: number[] } | null;
  metadata: Record<string, string>;
  /**
   * A foreign file that holds a diffusers UNet2DModel: its config.json (beside it, or null), whether ddpm/import takes
   * it, why not, and its model.
   */
  diffusers?: { config: string | null; importable: boolean; problem?: string; model?: ModelConfig };
  /** A checkpoint made by ddpm/import: where from (path, Hub repository, diffusers version, dtypes, SHA-256). */
  imported?: {
    format: string;
    path: string;
    repo?: string;
    diffusersVersion?: string;
    dtypes: string[];
    attentionNaming: string;
    sha256: string;
  };
  /** How the checkpoint's model samples with DDPM, where not the default (imported models: their scheduler's). */
  sampling?: { varianceType: 'fixedlarge' | 'fixedsmall'; clip: boolean };
}
export const InspectRequest = new RequestType<InspectParams, InspectResult, void>('ddpm/inspect');

export const TensorStatsParamsSchema = z.object({
  path: str(),
  name: str(),
  bins: int(1, 4096).default(64),
});
export type TensorStatsParams = z.input<typeof TensorStatsParamsSchema>;
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

export const EmaDiffParamsSchema = z.object({ path: str() });
export type EmaDiffParams = z.input<typeof EmaDiffParamsSchema>;
export interface EmaDiffResult {
  /** ‖ema − model‖ / ‖model‖ over all parameters. */
  relative: number;
  /** The tensors that differ most, relatively. */
  top: { name: string; relative: number }[];
}
export const EmaDiffRequest = new RequestType<EmaDiffParams, EmaDiffResult | null, void>('ddpm/emaDiff');

// ---- import ------------------------------------------------------------------------------------------------------

/**
 * A diffusers UNet2DModel (a folder with config.json and diffusion_pytorch_model.safetensors, optionally
 * scheduler_config.json; or a pipeline folder with unet/ and scheduler/; or the weights file itself) → a DDPM Studio
 * weights checkpoint (sidecar/interop/).
 */
export const ImportParamsSchema = z.object({
  path: str(),
  /** The checkpoint to write (.safetensors). */
  out: str(),
  /** Store float16 (half the size; sampling computes in float32). */
  f16: bool().default(false),
  /** The Hugging Face Hub repository the model came from, kept in the metadata (e.g. google/ddpm-cifar10-32). */
  repo: str().optional(),
});
export type ImportParams = z.input<typeof ImportParamsSchema>;
export type ImportOptions = z.output<typeof ImportParamsSchema>;
export interface ImportResult {
  out: string;
  bytes: number;
  params: number;
  model: ModelConfig;
  /** The preset of the same architecture (e.g. cifar10, celebahq256), if any. */
  preset?: string;
  schedule: ScheduleInfo;
  /** From the scheduler: DDPM's σ_t² (fixedsmall: β̃_t; fixedlarge: β_t) and whether x̂0 is clipped. */
  sampling: { varianceType: 'fixedlarge' | 'fixedsmall'; clip: boolean };
  /** The stored dtypes of the weights, and the attention key naming found. */
  dtypes: string[];
  attentionNaming: string;
  /** What the import took as given or left out (e.g. no scheduler_config.json). */
  notes: string[];
}
export const ImportRequest = new RequestType<ImportParams, ImportResult, void>('ddpm/import');

export interface LogParams {
  level: 'info' | 'warn' | 'error';
  message: string;
}
export const LogNotification = new NotificationType<LogParams>('ddpm/log');
