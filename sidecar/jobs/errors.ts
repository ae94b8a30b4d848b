/**
 * What went wrong in a job, in the terms a transport reports: the sidecar maps each kind to a protocol error code, the
 * CLI to an exit status (2 for bad arguments, 1 otherwise). The engine and the readers throw plain errors (or their
 * own classes); `classifyError` is the one place that sorts them.
 */
import fs from 'node:fs';
import { ParamsError } from '../validation.ts';
import { SafetensorsError } from '../checkpoint/safetensors.ts';
import { NotRegularFileError } from '../files.ts';
import { LimitError } from '../limits.ts';

/** A file or folder the request names does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** An input exists but is not what was asked for (not a checkpoint, not an image, a bad dataset, a value out of range). */
export class BadInputError extends Error {
  override name = 'BadInputError';
}

/** A training job is already running (one at a time per process). */
export class JobRunningError extends Error {
  override name = 'JobRunningError';
}

/** No such (running) job. */
export class NoSuchJobError extends Error {
  override name = 'NoSuchJobError';
}

export type ErrorKind =
  'params' | 'not-found' | 'bad-input' | 'backend' | 'cancelled' | 'job-running' | 'no-such-job' | 'internal';

/** Throws NotFoundError unless `file` exists. */
export function requireFile(file: string, what: string): void {
  if (!fs.existsSync(file)) throw new NotFoundError(`${what} not found: ${file}`);
}

// The dataset readers' messages (sidecar/data/*): they throw plain errors that say what is wrong with the input.
const BAD_DATA =
  /not a DDPM Studio checkpoint|not a readable image|unknown data source|not an IDX|IDX |CIFAR-10|no readable images|cannot be decoded|gzip stream|needs a path|is a folder|is a file|the dataset is empty|holds no|gives \d+×|over the limit of|DDIM steps must be|truncated|longer than the|no held-out set|labels for \d+ images/;

export function classifyError(e: unknown): ErrorKind {
  if (!(e instanceof Error)) return 'internal';
  if (e instanceof ParamsError) return 'params';
  if (e instanceof NotFoundError) return 'not-found';
  if (
    e instanceof BadInputError ||
    e instanceof SafetensorsError ||
    e instanceof NotRegularFileError ||
    e instanceof LimitError
  )
    return 'bad-input';
  if (e instanceof JobRunningError) return 'job-running';
  if (e instanceof NoSuchJobError) return 'no-such-job';
  // sidecar/interop/: a diffusers model we cannot read or a config we cannot run, named by the error.
  if (e.name === 'UnsupportedConfigError' || e.name === 'DiffusersFolderError' || e.name === 'TorchCheckpointError')
    return 'bad-input';
  if (e.name === 'AbortError') return 'cancelled';
  if (e.name === 'BackendUnavailableError' || e.name === 'WasmMemoryError') return 'backend';
  if (/no such (file|folder)/.test(e.message)) return 'not-found';
  if (BAD_DATA.test(e.message)) return 'bad-input';
  return 'internal';
}
