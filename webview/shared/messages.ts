/**
 * Messages between the extension's panels and their webviews (postMessage), typed once for both sides.
 * Images are base64 PNGs (as they arrive from the sidecar). Results of the sidecar travel as its protocol types them;
 * webview code imports those types only (`import type`): none of the sidecar's code may end up in a webview bundle.
 */
import type { EmaDiffResult, InspectResult, TensorStatsResult } from '../../sidecar/protocol.ts';
import type { EvalEntry } from './evalResults.ts';

export type TrajectoryToWebview =
  | {
      type: 'start';
      runId: string;
      n: number;
      total: number;
      sampler: string;
      checkpoint: string;
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
  { type: 'ready' } | { type: 'stop' } | { type: 'again' } | { type: 'saveGrid' } | { type: 'saveStrip'; png: string };

export type TrainingToWebview =
  | {
      type: 'start';
      jobId: string;
      steps: number;
      out: string;
      preset: string;
      data: string;
      /** The sidecar's compute backend and device. */
      backend: { name: string; device: string };
      /** Training runs on a CPU backend that the native one beats: show the hint with its install button. */
      suggestNative: boolean;
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
  | { type: 'history'; steps: number[]; loss: number[] }
  /** ddpm/trainEval: the EMA weights' held-out L_simple, overall and at each t of the grid. */
  | { type: 'eval'; step: number; loss: number; byT: { t: number; loss: number }[]; images: number; split: string }
  | { type: 'preview'; step: number; png: string }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'ended'; reason: string; step: number; checkpoint: string | null; error?: string };

export type TrainingFromWebview =
  { type: 'ready' } | { type: 'stop' } | { type: 'setLogScale'; value: boolean } | { type: 'installNative' };

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
