/**
 * The terminal side of the `ddpm` command line: the text it prints (progress lines, summaries; the JSON forms are the
 * jobs' own), the files it writes, the backend it starts and stops, and Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import { initBackend, shutdownBackend, type BackendChoice, type BackendReport } from './backend.ts';
import type { ModelSummary } from './jobs/info.ts';
import type { LossSummary } from './jobs/inspect.ts';
import type { TrainEvent, TrainProgress } from './jobs/train.ts';
import type { EvaluateResult, ImportResult, InspectResult } from './protocol.ts';
import { clearProgressLine, colorEnabled, paint, progressBar, userStderr, type TextStream } from './cliProgress.ts';

/**
 * Control characters (C0 but newline and tab, DEL, C1) and the bidirectional overrides, written as escapes. Strings
 * from a file (a checkpoint's metadata, its tensor names, a path) must not reach the terminal raw: ESC [ … moves the
 * cursor or rewrites lines, OSC 52 writes the clipboard, U+202E reverses what follows.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** JSON for the terminal: JSON escapes C0 itself; C1 and the bidirectional overrides become \\u escapes (still valid JSON). */
export function terminalJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
}

/** Training's status after the bar: step, loss, rate, threads, time left. */
function progressText(pr: TrainProgress): string {
  const threads = pr.threads > 1 ? ` on ${pr.threads} threads` : '';
  return `step ${pr.step}/${pr.steps}  loss ${pr.loss.toFixed(4)}  ${pr.itPerSec.toFixed(2)} it/s${threads}  ETA ${formatDuration(pr.etaSeconds)}`;
}

/** Training progress on `stream` (the user's stderr): a bar on a terminal, a line every few seconds otherwise. */
export function progressPrinter(stream: TextStream = userStderr()): (pr: TrainProgress) => void {
  const bar = progressBar(stream, { color: colorEnabled(stream) });
  return (pr) => bar.update(pr.step, pr.steps, progressText(pr));
}

/**
 * A count of steps with their rate and time left (sampling, interpolation, evaluation): `label` names the unit.
 */
export function stepProgressPrinter(
  label: string,
  stream: TextStream = userStderr(),
  now: () => number = Date.now,
): (done: number, total: number) => void {
  const bar = progressBar(stream, { color: colorEnabled(stream), now });
  let start: { at: number; done: number } | undefined;
  return (done, total) => {
    start ??= { at: now(), done };
    const seconds = (now() - start.at) / 1000;
    // The rate from the first update on: the steps before it include loading and the backend's warm-up.
    const rate = seconds > 0 && done > start.done ? (done - start.done) / seconds : undefined;
    const eta = rate ? formatDuration((total - done) / rate) : '?';
    bar.update(done, total, `${done}/${total} ${label}  ${rate ? rate.toFixed(1) : '?'}/s  ETA ${eta}`);
  };
}

export function backendText(report: BackendReport): string {
  const tried = report.attempts.map((a) => `  ${a.ok ? '✓' : '✗'} ${a.name}${a.reason ? `: ${a.reason}` : ''}`);
  return [`backend: ${report.name}`, `device:  ${report.device}`, ...tried].join('\n');
}

/** The classes of a grid, row-major: one name, or the names in turn, or none. */
export function classSummary(labels: readonly number[], classes: readonly string[]): string {
  const name = (l: number) => (l < 0 ? 'none (unconditional)' : (classes[l] ?? String(l)));
  const distinct = [...new Set(labels)];
  return distinct.length === 1 ? name(distinct[0]) : `${distinct.map(name).join(', ')} (image by image, in turn)`;
}

export function trainEventLine(e: TrainEvent): string {
  switch (e.type) {
    case 'checkpoint':
      return `checkpoint ${e.path}`;
    case 'samples':
      return `samples ${e.path}`;
    case 'resumed':
      return `resumed from ${e.path} at step ${e.step}`;
    case 'skipped':
      return `skipped ${e.count} file(s) that are not readable images, e.g. ${e.examples.join('; ')}`;
    case 'eval':
      return `eval step ${e.step}: held-out loss ${e.loss.toFixed(4)} (${e.images} ${e.split === 'test' ? 'held-out' : 'training'} images, ${e.byT.length} t from ${e.byT[0]?.t} to ${e.byT[e.byT.length - 1]?.t}) → ${e.path}`;
  }
}

/** A loss value: 4 decimals, or NaN where the run diverged (JSON stores NaN as null). */
const lossText = (v: number | null) => (v === null ? 'NaN' : v.toFixed(4));

/** What `ddpm inspect` prints; every string from the file passes through terminalSafe. */
export function inspectText(r: InspectResult, loss: LossSummary | null): string {
  return terminalSafe(inspectLines(r, loss));
}

function inspectLines(r: InspectResult, loss: LossSummary | null): string {
  const lines = [`${r.path}: ${(r.fileSize / 2 ** 20).toFixed(1)} MB, ${r.format ?? 'foreign safetensors'}`];
  if (r.format && r.model && r.schedule) {
    lines.push(
      `  ${r.kind} checkpoint, preset ${r.preset ?? '(custom)'}, step ${r.step}, ${r.params.toLocaleString('en-US')} parameters`,
    );
    lines.push(`  model ${JSON.stringify(r.model)}`);
    lines.push(
      `  schedule ${r.schedule.kind}, T = ${r.schedule.T}; data ${r.data?.source ?? '?'}; backend ${r.backend ?? '?'}; created ${r.created}`,
    );
    if (loss)
      lines.push(
        `  loss: ${loss.points} points, step ${loss.firstStep} → ${loss.lastStep}: ${lossText(loss.first)} → ${lossText(loss.last)} (min ${lossText(loss.min)})`,
      );
  } else {
    lines.push(
      `  not a DDPM Studio checkpoint: ${r.tensors.length} tensors, ${r.params.toLocaleString('en-US')} values; it can be listed, not sampled from`,
    );
  }
  lines.push(`  ${r.tensors.length} tensors:`);
  for (const t of r.tensors) lines.push(`    ${t.name.padEnd(48)} ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]`);
  return lines.join('\n');
}

export function modelText(m: ModelSummary): string {
  const c = m.config;
  const levels = c.chMult.map((k, i) => `${c.imageSize / 2 ** i}px×${c.ch * k}`).join(' → ');
  return [
    `preset ${m.preset}: ${m.params.toLocaleString('en-US')} parameters in ${m.tensors} tensors`,
    `  images ${c.imageSize}×${c.imageSize}×${c.channels}; ch ${c.ch}, mult (${c.chMult.join(',')}), ${c.numResBlocks} res blocks/level`,
    `  levels ${levels}; attention at ${c.attnResolutions.join(', ') || 'none'}; dropout ${c.dropout}; GroupNorm ${c.groups}`,
  ].join('\n');
}

/** What `ddpm import` made: the file, the model, the schedule and sampling it keeps, and what it noted. */
export function importText(r: ImportResult): string {
  const c = r.model;
  const s = r.schedule;
  return [
    `wrote ${r.out} (${(r.bytes / 2 ** 20).toFixed(1)} MB): ${r.params.toLocaleString('en-US')} parameters${r.preset ? `, the ${r.preset} architecture` : ''}`,
    `  images ${c.imageSize}×${c.imageSize}×${c.channels}; ch ${c.ch}, mult (${c.chMult.join(',')}); attention at ${c.attnResolutions.join(', ') || 'the middle only'}, ${c.attnHeadDim ? `heads of ${c.attnHeadDim} channels` : 'one head'}`,
    `  schedule ${s.kind}${s.kind === 'linear' ? ` β ${s.betaStart} … ${s.betaEnd}` : ''}, T = ${s.T}; DDPM variance ${r.sampling.varianceType}, x̂0 ${r.sampling.clip ? 'clipped' : 'not clipped'}`,
    `  weights ${r.dtypes.join(', ')}; attention keys ${r.attentionNaming}`,
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

/** A message on stderr, on a line of its own even while a progress bar is drawn; "warning:" in yellow where colour is on. */
export function say(line: string): void {
  clearProgressLine();
  const color = colorEnabled(userStderr());
  console.error(terminalSafe(line).replace(/^warning:/, (w) => paint(color, 'yellow', w)));
}
export const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export function write(file: string, png: Buffer): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, png);
  say(`wrote ${file}`);
}

/** Runs `f` on the chosen backend, then shuts it down; `verbose` also lists the backends tried and why they failed. */
export async function withBackend<T>(
  choice: unknown,
  f: (backend: string) => Promise<T>,
  verbose: unknown = false,
): Promise<T> {
  const report = await initBackend(choice as BackendChoice);
  say(verbose === true ? backendText(report) : `backend: ${report.name} — ${report.device}`);
  try {
    return await f(report.name);
  } finally {
    await shutdownBackend();
  }
}

/** Ctrl-C aborts `f`'s signal (a training run saves a checkpoint); a second Ctrl-C quits at once. */
export async function interruptible<T>(f: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) process.exit(130);
    say('stopping: saving a checkpoint (Ctrl-C again to quit without saving)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await f(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** A number of bits/dim or an MSE: 4 decimals, or 3 significant digits below 0.001. */
const figure = (v: number) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4));

/**
 * Evaluation progress: a bar on a terminal, a line every few seconds otherwise. Each stage (bits/dim: forward passes;
 * quality: the sampler's steps) has its own bar and rate.
 */
export function evaluateProgressPrinter(
  stream: TextStream = userStderr(),
): (p: { stage?: 'bpd' | 'quality'; done: number; total: number }) => void {
  let current: string | undefined;
  let printer: ((done: number, total: number) => void) | undefined;
  return ({ stage, done, total }) => {
    if (!printer || stage !== current) {
      current = stage;
      printer = stepProgressPrinter(stage === 'quality' ? 'sampler steps (quality)' : 'forward passes', stream);
    }
    printer(done, total);
  };
}

/** `ddpm eval`'s table: bits/dim and its parts, the terms by quarter of t and at a few t. */
export function evaluateText(r: EvaluateResult): string {
  const lines = [`${r.checkpoint}: step ${r.step}, ${r.weights} weights`];
  if (r.bpd) {
    lines.push(
      `data: ${r.data.source}, ${r.data.split === 'test' ? 'held-out' : 'all'} images ${r.images[0]}–${r.images.at(-1)} (${r.n}); T = ${r.T}; seed ${r.seed}`,
    );
    if (r.data.note) lines.push(`note: ${r.data.note}`);
  }
  const b = r.bpd;
  if (b) {
    const sigma = b.variance === 'fixedlarge' ? 'σ² = β_t' : 'σ² = β̃_t';
    lines.push(
      '',
      `bits/dim  ${b.mean.toFixed(4)}${b.stderr === null ? '' : ` ± ${b.stderr.toFixed(4)}`}  (variational bound, eq. 5; ${sigma}${b.clip ? ', x̂0 clipped' : ''}; ± standard error over images)`,
      `  prior      L_T          ${figure(b.prior)}`,
      `  decoder    L_0          ${figure(b.decoder)}`,
      `  KL terms   L_1…L_T−1    ${figure(b.kl)}`,
      '',
      `  t            bits/dim     x̂0 MSE      ε MSE`,
    );
    const row = (label: string, vb: number, x0: number, eps: number) =>
      `  ${label.padEnd(11)}${figure(vb).padStart(10)} ${figure(x0).padStart(10)} ${figure(eps).padStart(10)}`;
    for (const q of b.quarters) lines.push(row(`${q.from}–${q.to}`, q.vb, q.x0Mse, q.epsMse));
    lines.push('  (by quarter of t: the terms summed, the MSEs averaged)', '');
    const ts = [...new Set([0, 1, 2, 5, 10, 50, 100, 250, 500, 750, r.T - 1].filter((t) => t < r.T))];
    for (const t of ts) lines.push(row(`t = ${t}`, b.perT.vb[t], b.perT.x0Mse[t], b.perT.epsMse[t]));
  }
  const q = r.quality;
  if (q) {
    const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
    const how = q.sampling.classes ? `, every class in turn, guidance ${q.sampling.guidance}` : '';
    lines.push(
      '',
      `sample quality of ${q.n} samples (DDIM ${q.sampling.steps} steps, seed ${q.sampling.seed}${how}), judged by ${q.classifier.file}`,
      `  (a classifier of ${q.classifier.source}, ${pct(q.classifier.heldOutAccuracy)} accurate on its held-out images)`,
      `  Fréchet distance  ${q.frechetDistance.toFixed(2)}  (classifier features, vs ${q.realImages} held-out images; compare at equal N only)`,
      `  mean confidence   ${q.meanConfidence.toFixed(3)}`,
      `  coverage          ${q.coverage}/${q.classes.length} classes with ≥ ${pct(q.coverageThreshold)} of the samples`,
    );
    if (q.classAgreement !== undefined)
      lines.push(`  class agreement   ${pct(q.classAgreement)} classified as the class they were sampled for`);
    lines.push('  class histogram');
    const width = Math.max(...q.classes.map((c) => c.length));
    q.classes.forEach((c, i) => {
      const f = q.classHistogram[i];
      lines.push(`    ${c.padEnd(width)}  ${pct(f).padStart(7)}  ${'#'.repeat(Math.round(f * 100))}`.trimEnd());
    });
    lines.push(`  ${q.seconds.toFixed(1)} s`);
  }
  const on = `${r.backend.name} (${r.backend.device})`;
  lines.push(
    '',
    b
      ? `${r.forwardPasses.toLocaleString('en-US')} forward passes in ${r.seconds.toFixed(1)} s on ${on}, ${plural(r.threads, 'thread')}`
      : `${r.seconds.toFixed(1)} s on ${on}`,
  );
  return lines.join('\n');
}
