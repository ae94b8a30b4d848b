/**
 * A training run folder as a client that (re)attaches to it needs it (ddpm/trainRun): the live job training it, how the
 * last job here ended, and what the folder holds — loss.csv (thinned), eval.csv, the newest preview, the checkpoints
 * and run.json (the request that last trained in it). Reads files only; no tensors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCheckpointMeta } from '../checkpoint/checkpoint.ts';
import { readHeader } from '../checkpoint/safetensors.ts';
import type { TrainRunResult } from '../protocol.ts';
import { RUN_FILE, type TrainingSlot } from './trainSession.ts';

/** Points of loss history a client gets at most: enough for a chart as wide as a screen, small enough to send. */
export const HISTORY_POINTS = 4000;

const num = (s: string | undefined): number | null => (s === undefined || s === '' ? null : Number(s));

/** loss.csv → steps, loss and the four quarter columns, evenly thinned to at most `max` rows (the last one kept). */
export function readLossCsv(file: string, max = HISTORY_POINTS): TrainRunResult['history'] {
  const history: TrainRunResult['history'] = { steps: [], loss: [], quarters: [[], [], [], []] };
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return history;
  }
  const lines = text.split('\n');
  const header = (lines[0] ?? '').split(',');
  const col = (name: string) => header.indexOf(name);
  const [si, li] = [col('step'), col('loss')];
  if (si < 0 || li < 0) return history;
  const qi = [1, 2, 3, 4].map((q) => col(`loss_q${q}`));
  const rows = lines.slice(1).filter((l) => l.trim() !== '');
  const stride = Math.max(1, Math.ceil(rows.length / max));
  rows.forEach((line, i) => {
    if (i % stride !== 0 && i !== rows.length - 1) return;
    const f = line.split(',');
    const step = Number(f[si]);
    const loss = Number(f[li]);
    // A row cut short by a crash mid-write (fewer fields than the header) is skipped.
    if (f.length < header.length || !Number.isFinite(step) || !Number.isFinite(loss)) return;
    history.steps.push(step);
    history.loss.push(loss);
    qi.forEach((c, q) => history.quarters[q].push(c < 0 ? null : num(f[c])));
  });
  return history;
}

/** eval.csv → the overall held-out loss by step. */
export function readEvalCsv(file: string): TrainRunResult['evals'] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(','))
    .map((f) => ({ step: Number(f[0]), loss: Number(f[1]) }))
    .filter((e) => Number.isFinite(e.step) && Number.isFinite(e.loss));
}

const stepOf = (name: string, re: RegExp): number | null => {
  const m = re.exec(name);
  return m ? Number(m[1]) : null;
};

interface RunFile {
  data?: string;
  preset?: string;
  steps?: number;
  batch?: number;
}

function readRunFile(out: string): RunFile {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(out, RUN_FILE), 'utf8')) as RunFile;
    return typeof r === 'object' && r !== null ? r : {};
  } catch {
    return {};
  }
}

/** What the checkpoint's header says (null for a file that is not one of ours, or unreadable). */
function checkpointFacts(
  file: string,
): { step: number; data?: string; preset?: string; batch?: number; T?: number } | null {
  try {
    const meta = readCheckpointMeta(readHeader(file));
    return meta
      ? { step: meta.step, data: meta.data?.source, preset: meta.preset, batch: meta.batch, T: meta.schedule.T }
      : null;
  } catch {
    return null;
  }
}

/**
 * The run in `out` (or, without it, the run of the job training now). Null when there is no such run: no live job, or
 * a folder with neither a checkpoint nor a loss log.
 */
export function trainRunState(slot: TrainingSlot, out?: string): TrainRunResult | null {
  const live = slot.current;
  const folder = out ?? live?.out;
  if (!folder) return null;
  const same = (a: string, b: string) => path.resolve(a) === path.resolve(b);
  const job = live && same(live.out, folder) ? live : null;
  const lastEnded = slot.lastEnded && same(slot.lastEnded.out, folder) ? slot.lastEnded : null;
  const latestFile = path.join(folder, 'latest.safetensors');
  const latest = fs.existsSync(latestFile) ? latestFile : null;
  let names: string[] = [];
  try {
    names = fs.readdirSync(folder);
  } catch {
    if (!job) return null;
  }
  if (!job && !latest && !names.includes('loss.csv')) return null;
  const checkpoints = names
    .map((f) => ({ f, step: stepOf(f, /^ckpt-(\d+)\.safetensors$/) }))
    .filter((c): c is { f: string; step: number } => c.step !== null)
    .sort((a, b) => a.step - b.step)
    .map((c) => ({ step: c.step, path: path.join(folder, c.f) }));
  let preview: TrainRunResult['preview'] = null;
  try {
    const newest = fs
      .readdirSync(path.join(folder, 'samples'))
      .map((f) => ({ f, step: stepOf(f, /^step-(\d+)\.png$/) }))
      .filter((c): c is { f: string; step: number } => c.step !== null)
      .sort((a, b) => b.step - a.step)[0];
    if (newest) {
      const file = path.join(folder, 'samples', newest.f);
      preview = { step: newest.step, path: file, png: fs.readFileSync(file).toString('base64') };
    }
  } catch {
    // no previews yet
  }
  const run = readRunFile(folder);
  const facts = latest ? checkpointFacts(latest) : null;
  const history = readLossCsv(path.join(folder, 'loss.csv'));
  return {
    out: folder,
    job: job ? { jobId: job.id, step: job.step, steps: job.steps, backend: job.backend } : null,
    ended: lastEnded
      ? {
          reason: lastEnded.reason,
          step: lastEnded.step,
          checkpoint: lastEnded.checkpoint,
          ...(lastEnded.error !== undefined ? { error: lastEnded.error } : {}),
        }
      : null,
    data: job?.options.data ?? run.data ?? facts?.data ?? null,
    preset: job?.options.preset ?? run.preset ?? facts?.preset ?? null,
    steps: job?.steps ?? (typeof run.steps === 'number' ? run.steps : null),
    batch: job?.options.batch ?? (typeof run.batch === 'number' ? run.batch : null) ?? facts?.batch ?? null,
    step: job?.step ?? facts?.step ?? history.steps.at(-1) ?? 0,
    resumedFrom: job ? job.resumedFrom : null,
    T: facts?.T ?? null,
    history,
    evals: readEvalCsv(path.join(folder, 'eval.csv')),
    preview,
    checkpoints,
    latest,
  };
}
