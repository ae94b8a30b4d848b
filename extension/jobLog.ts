/**
 * The DDPM output log's record of jobs: one line when a job starts (what it is and its parameters), one when it ends
 * (done with its result, stopped, or failed with the error) with its duration. Every sampling, interpolation,
 * evaluation and training run goes through here, so that the log answers "what ran, with what, and how did it end".
 * No `vscode` here (a LogOutputChannel is a JobLogSink): the tests read what it writes.
 */

export interface JobLogSink {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export type JobKind = 'sample' | 'interpolate' | 'evaluate' | 'train';

/** key=value pairs for the log: undefined, empty and bulky fields (tokens, image data) left out; arrays joined. */
export function formatParams(params: Record<string, unknown>): string {
  const skip = new Set(['token', 'png', 'images']);
  return Object.entries(params)
    .filter(([k, v]) => !skip.has(k) && v !== undefined && v !== null && v !== '')
    .map(([k, v]) => {
      const text = Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v);
      return `${k}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`;
    })
    .join(' ');
}

/** "0.8 s", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export interface JobRecord {
  readonly id: string;
  /** The job finished; `result` says what it produced. */
  done(result: string): void;
  /** The user stopped it. */
  stopped(detail?: string): void;
  failed(error: string): void;
}

let counter = 0;

/** The last lines written (what the internal command ddpm._jobLog returns to the tests). */
const recent: string[] = [];
const RECENT = 200;

/** The sink with each line also kept in `recent`. */
function kept(log: JobLogSink): JobLogSink {
  const keep = (line: string) => {
    recent.push(line);
    if (recent.length > RECENT) recent.splice(0, recent.length - RECENT);
  };
  return {
    info: (m) => {
      keep(m);
      log.info(m);
    },
    warn: (m) => {
      keep(m);
      log.warn(m);
    },
    error: (m) => {
      keep(m);
      log.error(m);
    },
  };
}

/** The job lines written lately, oldest first. */
export function recentJobLines(): string[] {
  return [...recent];
}

/** Logs the start of a job and returns its record; only the first of done/stopped/failed is logged. */
export function startJob(
  log: JobLogSink,
  kind: JobKind,
  params: Record<string, unknown>,
  now: () => number = Date.now,
): JobRecord {
  log = kept(log);
  const id = `${kind} #${++counter}`;
  const t0 = now();
  const text = formatParams(params);
  log.info(`[${id}] started${text ? `: ${text}` : ''}`);
  let ended = false;
  const end = (write: (m: string) => void, verb: string, detail?: string) => {
    if (ended) return;
    ended = true;
    write(`[${id}] ${verb} after ${formatDuration((now() - t0) / 1000)}${detail ? `: ${detail}` : ''}`);
  };
  return {
    id,
    done: (result) => end((m) => log.info(m), 'done', result),
    stopped: (detail) => end((m) => log.info(m), 'stopped', detail),
    failed: (error) => end((m) => log.error(m), 'failed', error.replace(/\s+/g, ' ').trim()),
  };
}
