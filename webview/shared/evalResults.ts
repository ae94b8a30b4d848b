/**
 * The inspector's evaluations (ddpm/evaluate results) stored beside a checkpoint, `<name>.eval.json`: one entry per
 * (data, n, seed, quality), newest first, so that several coexist and the newest is shown when the checkpoint is
 * opened again; and their formatting for the view. Pure logic: the extension reads and writes the file, the webview
 * formats what it is sent.
 */
import type { EvaluateResult } from '../../sidecar/protocol.ts';

export const EVAL_FILE_FORMAT = 'ddpm-studio-eval/1';

/** What identifies an evaluation: the same key evaluated again replaces the older entry. */
export interface EvalKey {
  data: string;
  n: number;
  seed: number;
  quality: boolean;
}

export interface EvalEntry {
  key: EvalKey;
  /** When it finished (ISO 8601). */
  at: string;
  result: EvaluateResult;
}

export interface EvalFile {
  format: typeof EVAL_FILE_FORMAT;
  /** The checkpoint's file name, and its step when evaluated (a retrained file of the same name shows its age). */
  checkpoint: string;
  entries: EvalEntry[];
}

/** `mnist.safetensors` → `mnist.eval.json` (any other name: the name + `.eval.json`). */
export function evalFileName(checkpointName: string): string {
  return `${checkpointName.replace(/\.safetensors$/i, '')}.eval.json`;
}

export function sameKey(a: EvalKey, b: EvalKey): boolean {
  return a.data === b.data && a.n === b.n && a.seed === b.seed && a.quality === b.quality;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function isEntry(v: unknown): v is EvalEntry {
  if (!isObject(v) || !isObject(v.key) || !isObject(v.result) || typeof v.at !== 'string') return false;
  const k = v.key;
  return (
    typeof k.data === 'string' &&
    typeof k.n === 'number' &&
    typeof k.seed === 'number' &&
    typeof k.quality === 'boolean'
  );
}

/**
 * The file's entries, newest first; text that is not such a file (missing, hand-edited, another format) gives no
 * entries rather than an error, and entries that are not well formed are dropped.
 */
export function parseEvalFile(text: string | undefined, checkpoint: string): EvalFile {
  const empty: EvalFile = { format: EVAL_FILE_FORMAT, checkpoint, entries: [] };
  if (!text) return empty;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return empty;
  }
  if (!isObject(v) || v.format !== EVAL_FILE_FORMAT || !Array.isArray(v.entries)) return empty;
  const entries = v.entries.filter(isEntry).sort((a, b) => b.at.localeCompare(a.at));
  return { format: EVAL_FILE_FORMAT, checkpoint, entries };
}

/** Adds an entry as the newest, replacing one of the same key; keeps at most `max` entries. */
export function mergeEval(file: EvalFile, entry: EvalEntry, max = 20): EvalFile {
  const rest = file.entries.filter((e) => !sameKey(e.key, entry.key));
  return { ...file, entries: [entry, ...rest].slice(0, max) };
}

export function serializeEvalFile(file: EvalFile): string {
  return `${JSON.stringify(file)}\n`;
}

/** The key of a result: what was asked for. */
export function evalKeyOf(r: EvaluateResult): EvalKey {
  return { data: r.data.source, n: r.n, seed: r.seed, quality: r.quality !== null };
}

// ---- formatting ---------------------------------------------------------------------------------------------------

/** A number of bits/dim: 3 decimals, or 2 significant digits in exponent form below 0.001. */
export function formatBits(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(3) : v.toExponential(1);
}

/** "2.171 ± 0.041 bits/dim" (± the standard error over images; without it for one image). */
export function formatBpd(mean: number, stderr: number | null): string {
  return `${formatBits(mean)}${stderr === null ? '' : ` ± ${formatBits(stderr)}`} bits/dim`;
}

export function formatPercent(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)} %`;
}

/** The rows of the result's table: label and value. */
export function evalSummaryRows(r: EvaluateResult): { label: string; value: string }[] {
  const rows: { label: string; value: string }[] = [];
  const where = r.data.split === 'test' ? 'held-out images' : 'images (no held-out part)';
  rows.push({ label: 'data', value: `${r.data.source}: ${r.n} ${where}, seed ${r.seed}, ${r.weights} weights` });
  if (r.bpd) {
    rows.push({ label: 'bits/dim', value: formatBpd(r.bpd.mean, r.bpd.stderr) });
    rows.push({ label: 'prior L_T', value: `${formatBits(r.bpd.prior)} bits/dim` });
    rows.push({ label: 'decoder L_0', value: `${formatBits(r.bpd.decoder)} bits/dim` });
    rows.push({ label: 'KL terms L_1…L_T−1', value: `${formatBits(r.bpd.kl)} bits/dim` });
  }
  const q = r.quality;
  if (q) {
    rows.push({ label: 'mean confidence', value: formatPercent(q.meanConfidence) });
    rows.push({
      label: 'coverage',
      value: `${q.coverage} of ${q.classes.length} classes (≥ ${formatPercent(q.coverageThreshold)} of the images each)`,
    });
    rows.push({
      label: 'Fréchet distance',
      value: `${q.frechetDistance.toPrecision(4)} (classifier features, ${q.n} samples vs ${q.realImages} real)`,
    });
    if (q.classAgreement !== undefined) rows.push({ label: 'class agreement', value: formatPercent(q.classAgreement) });
  }
  rows.push({
    label: 'cost',
    value: `${r.forwardPasses.toLocaleString('en-US')} forward passes, ${r.seconds.toFixed(1)} s on ${r.backend.name}${r.threads > 1 ? ` (${r.threads} threads)` : ''}`,
  });
  return rows;
}

/** A stored entry in a line, for the list of earlier evaluations. */
export function entryLabel(e: EvalEntry): string {
  const bpd = e.result.bpd ? formatBpd(e.result.bpd.mean, e.result.bpd.stderr) : 'no bits/dim';
  return `${e.at.slice(0, 16).replace('T', ' ')} · ${e.key.data} · n ${e.key.n} · seed ${e.key.seed}${e.key.quality ? ' · quality' : ''} · ${bpd}`;
}

/**
 * The per-t curve for the plot: t, the bound's term (bits/dim; L_0 at t = 0) and the MSE of x̂_0 and of ε; terms that
 * are not positive are null (a log scale cannot draw them).
 */
export function perTSeries(r: EvaluateResult): [number[], (number | null)[], (number | null)[], (number | null)[]] {
  const p = r.bpd?.perT;
  if (!p) return [[], [], [], []];
  const pos = (v: number) => (Number.isFinite(v) && v > 0 ? v : null);
  return [p.vb.map((_, t) => t), p.vb.map(pos), p.x0Mse.map(pos), p.epsMse.map(pos)];
}

/** Whether the sample-quality classifier exists for a data source (models/classifiers/: MNIST, Fashion-MNIST). */
export function qualityAvailable(source: string | undefined): boolean {
  if (!source) return false;
  return source === 'mnist' || (source.startsWith('idx:') && /fashion/i.test(source));
}

/** The ticks of a log axis from min to max: the powers of ten between them (a decade per tick, however wide). */
export function decadeTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > 0) || max < min) return [];
  const out: number[] = [];
  for (let k = Math.floor(Math.log10(min)); k <= Math.ceil(Math.log10(max)); k++) {
    const v = Number(`1e${k}`);
    if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
  }
  return out;
}

/** A log axis's label: 0.01 … 1000 as numbers, else 1e-5, 1e+4. */
export function formatLogTick(v: number): string {
  return v >= 0.01 && v < 1e4 ? String(Number(v.toPrecision(1))) : v.toExponential(0);
}
