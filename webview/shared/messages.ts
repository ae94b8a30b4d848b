/**
 * Messages between the extension's panels and their webviews (postMessage), typed once for both sides.
 * Images are base64 PNGs (as they arrive from the sidecar). Results of the sidecar travel as its protocol types them;
 * webview code imports those types only (`import type`): none of the sidecar's code may end up in a webview bundle.
 */
import type { EmaDiffResult, InspectResult, TensorStatsResult } from '../../sidecar/protocol.ts';
import type { EvalEntry } from './evalResults.ts';

/** What DDPM: Sample ran with: checkpoint, number of images, sampler and its steps, seed, class choice, guidance. */
export interface TrajectorySettings {
  checkpoint: string;
  n: number;
  sampler: 'ddim' | 'ddpm';
  steps: number;
  seed: number;
  class: number | 'each' | 'any';
  guidance: number;
}

export type TrajectoryToWebview =
  | {
      type: 'start';
      runId: string;
      n: number;
      total: number;
      sampler: string;
      checkpoint: string;
      /** The run's seed: shown and editable in the view, for "Sample again". */
      seed?: number;
      /**
       * The run's request settings, kept in the view's state: a panel restored after a reload samples again with
       * them (the extension reads them back; the view does not look inside).
       */
      settings?: TrajectorySettings;
      /** Conditional checkpoints: the class of each image (known from the choice), the class names, the choice in
       * words and the guidance scale. Absent for unconditional checkpoints; `labels` absent for 'any'. */
      labels?: number[];
      classes?: string[];
      choice?: string;
      guidance?: number;
    }
  | { type: 'step'; runId: string; step: number; total: number; t: number; at: number }
  | { type: 'frame'; runId: string; index: number; t: number; xt: string; x0: string }
  /** `labels`, `classes`: what the sidecar's result says (conditional checkpoints). */
  | {
      type: 'done';
      runId: string;
      grid: string;
      seconds: number;
      threads?: number;
      labels?: number[];
      classes?: string[];
    }
  | { type: 'error'; runId: string; message: string };

export type TrajectoryFromWebview =
  | { type: 'ready' }
  | { type: 'stop' }
  /** Sample again with the same settings and this seed (absent: the last run's). */
  | { type: 'again'; seed?: number }
  | { type: 'saveGrid' }
  | { type: 'saveStrip'; png: string };

export type TrainingToWebview =
  | {
      type: 'start';
      /** The live job; null when the view shows a run that no job trains now (restored after it ended). */
      jobId: string | null;
      steps: number;
      out: string;
      preset: string;
      data: string;
      /** The sidecar's compute backend and device (null where unknown: a run that is not training). */
      backend: { name: string; device: string } | null;
      /** Training runs on a CPU backend that the native one beats: show the hint with its install button. */
      suggestNative: boolean;
      /** The step the job resumed from (null: a new run). */
      resumedFrom?: number | null;
      /** The step the run is at (before progress arrives). */
      step?: number;
    }
  | {
      type: 'progress';
      step: number;
      steps: number;
      loss: number;
      lr: number;
      itPerSec: number;
      etaSeconds: number;
      threads: number;
      /** The step's loss by quarter of t (null where its batch drew none), and T (what they are quarters of). */
      lossByQuarter: (number | null)[];
      T: number;
    }
  /** The run's loss history (loss.csv), replacing what the view has; its held-out losses and T when known. */
  | {
      type: 'history';
      steps: number[];
      loss: number[];
      quarters?: (number | null)[][];
      evals?: { step: number; loss: number }[];
      T?: number | null;
    }
  /** The run's checkpoints, replacing the list (oldest first). */
  | { type: 'checkpoints'; list: { step: number; path: string }[] }
  /** ddpm/trainEval: the EMA weights' held-out L_simple, overall and at each t of the grid. */
  | { type: 'eval'; step: number; loss: number; byT: { t: number; loss: number }[]; images: number; split: string }
  | { type: 'preview'; step: number; png: string }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'ended'; reason: string; step: number; checkpoint: string | null; error?: string };

export type TrainingFromWebview =
  | { type: 'ready' }
  | { type: 'stop' }
  | { type: 'setLogScale'; value: boolean }
  | { type: 'installNative' }
  /** Resume the run (its latest checkpoint). */
  | { type: 'resume' }
  /** A checkpoint of the list: open it in the inspector, or sample from it. */
  | { type: 'openCheckpoint'; path: string; action: 'inspect' | 'sample' };

/** The checkpoint inspector (a custom editor): the sidecar's results as they come, the webview formats them. */
export type CheckpointToWebview =
  | { type: 'loading'; path: string }
  | { type: 'error'; path: string; message: string }
  /** `openMs`: how long reading the header took (ddpm/inspect). */
  | { type: 'header'; inspect: InspectResult; openMs: number }
  | { type: 'stats'; stats: TensorStatsResult }
  | { type: 'statsError'; name: string; message: string }
  | { type: 'emaDiff'; diff: EmaDiffResult }
  | { type: 'preview'; png: string; seconds: number }
  | { type: 'previewError'; message: string }
  /** The evaluations stored beside the checkpoint (`<name>.eval.json`), newest first (on opening, and after a run). */
  | { type: 'evalStored'; entries: EvalEntry[] }
  /** Evaluate… was answered: the run starts. */
  | { type: 'evalStart'; data: string; n: number; quality: boolean }
  /** ddpm/evaluateProgress of that run. */
  | { type: 'evalProgress'; stage: 'bpd' | 'quality'; done: number; total: number }
  | { type: 'evalError'; message: string; cancelled: boolean };

export type CheckpointFromWebview =
  | { type: 'ready' }
  | { type: 'stats'; name: string }
  | { type: 'sample' }
  /** A training checkpoint: DDPM: Resume Training from it. */
  | { type: 'resume' }
  | { type: 'preview' }
  | { type: 'evaluate' }
  | { type: 'stopEval' }
  /** A diffusers UNet2DModel's weights: DDPM: Import Diffusers Model… on this file. */
  | { type: 'importDiffusers' };

export type InterpolateToWebview =
  | { type: 'start'; rows: number[]; lambdas: number[]; a: string; b: string; checkpoint: string }
  | { type: 'inputs'; a: string; b: string }
  /** `done`: the fraction of this row's denoising steps taken. */
  | { type: 'progress'; row: number; done: number }
  | { type: 'row'; row: number; t: number; strip: string }
  | { type: 'done'; seconds: number }
  | { type: 'error'; message: string };

export type InterpolateFromWebview = { type: 'ready' } | { type: 'save'; png: string };

/** The editing view (DDPM: Inpaint Image… and DDPM: Image to Image…): one image, one checkpoint, runs on demand. */
export type EditMode = 'inpaint' | 'img2img';

/** What a run asks for, from the view's controls. */
export interface EditRunSettings {
  n: number;
  /** Inpainting: the painted mask as a PNG data URL (white = regenerate), and RePaint's timesteps, j and r. */
  mask?: string;
  steps?: number;
  jumps?: number;
  resample?: number;
  /** Image to image: t₀/T. */
  strength?: number;
  seed: number;
  /** Conditional checkpoints: a class index or 'any'. */
  class?: number | 'any';
  guidance?: number;
}

export type EditToWebview =
  /**
   * The image (its file's bytes, base64, and MIME type) and the checkpoint's model size, channels and classes: the view
   * converts the image as the sidecar does, to paint over what the model sees. `settings`: the defaults to offer.
   */
  | {
      type: 'setup';
      mode: EditMode;
      /** The image file (kept in the view's state, so that a restored panel can run again). */
      imagePath: string;
      imageName: string;
      imageData: string;
      imageMime: string;
      checkpoint: string;
      checkpointName: string;
      imageSize: number;
      channels: number;
      T: number;
      classes: string[];
      settings: EditRunSettings;
    }
  | { type: 'start'; runId: string; total: number; caption: string }
  | { type: 'step'; runId: string; step: number; total: number; t: number; up: boolean; at: number }
  | { type: 'frame'; runId: string; index: number; t: number; xt: string; x0: string }
  | { type: 'done'; runId: string; grid: string; input: string; mask?: string; seconds: number; threads: number }
  | { type: 'error'; runId: string; message: string };

export type EditFromWebview =
  | { type: 'ready' }
  | { type: 'run'; settings: EditRunSettings }
  | { type: 'stop' }
  | { type: 'save' }
  | { type: 'pickCheckpoint' };
