/**
 * Loss curve data for the training view: raw points, an exponentially smoothed series (TensorBoard-style, with
 * bias correction so the start is not dragged to 0), the loss by quarter of t smoothed the same way, the held-out
 * evaluations, and a bound on the number of points drawn. Pure logic.
 */
export interface LossSeries {
  steps: number[];
  raw: number[];
  smooth: number[];
  /** The loss by quarter of t per step (null where the step's batch drew no t in that quarter): four series. */
  quarters: (number | null)[][];
  /** Each quarter smoothed as the loss is; null before the quarter's first value (uPlot's gap). */
  quarterSmooth: (number | null)[][];
}

export function smoothSeries(values: readonly (number | null)[], weight = 0.9): number[] {
  const out: number[] = [];
  let acc = 0;
  let norm = 0;
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) {
      out.push(out.length ? out[out.length - 1] : NaN);
      continue;
    }
    acc = weight * acc + (1 - weight) * v;
    norm = weight * norm + (1 - weight);
    out.push(acc / norm);
  }
  return out;
}

/** Smoothed, with NaN (no value yet) as null: what uPlot draws as a gap. */
export function smoothForPlot(values: readonly (number | null)[], weight = 0.9): (number | null)[] {
  return smoothSeries(values, weight).map((v) => (Number.isFinite(v) ? v : null));
}

/** The quarters of t for T timesteps as `lossByQuarter` splits them: [floor(qT/4), floor((q+1)T/4) − 1]. */
export function quarterRanges(T: number): { from: number; to: number }[] {
  return [0, 1, 2, 3].map((q) => ({ from: Math.floor((q * T) / 4), to: Math.floor(((q + 1) * T) / 4) - 1 }));
}

/** Legend names of the quarters: "t < 250", "t 250–499", "t 500–749", "t ≥ 750" for T = 1000. */
export function quarterLabels(T: number): string[] {
  return quarterRanges(T).map(({ from, to }, q) =>
    q === 0 ? `t < ${to + 1}` : q === 3 ? `t ≥ ${from}` : `t ${from}–${to}`,
  );
}

const QUARTERS = 4;
const meanOfPresent = (a: number | null, b: number | null): number | null =>
  a === null ? b : b === null ? a : (a + b) / 2;

export class LossHistory {
  private steps: number[] = [];
  private loss: number[] = [];
  private quarters: (number | null)[][] = [];

  constructor(private readonly maxPoints = 5000) {}

  get size(): number {
    return this.steps.length;
  }

  /**
   * Adds a point (with the step's loss by quarter of t, if known); a step at or before the last one (a resumed run)
   * replaces the tail from there.
   */
  add(step: number, loss: number, quarters?: readonly (number | null)[]): void {
    while (this.steps.length && this.steps[this.steps.length - 1] >= step) {
      this.steps.pop();
      this.loss.pop();
      this.quarters.pop();
    }
    this.steps.push(step);
    this.loss.push(loss);
    this.quarters.push(Array.from({ length: QUARTERS }, (_, q) => quarters?.[q] ?? null));
    if (this.steps.length > this.maxPoints) {
      // Halve the resolution of the older half: long runs keep their shape at bounded cost.
      const half = Math.floor(this.steps.length / 2);
      const s: number[] = [];
      const l: number[] = [];
      const qs: (number | null)[][] = [];
      for (let i = 0; i < half; i += 2) {
        const j = Math.min(i + 1, half - 1);
        s.push(this.steps[j]);
        l.push((this.loss[i] + this.loss[j]) / 2);
        qs.push(this.quarters[i].map((v, q) => meanOfPresent(v, this.quarters[j][q])));
      }
      this.steps = [...s, ...this.steps.slice(half)];
      this.loss = [...l, ...this.loss.slice(half)];
      this.quarters = [...qs, ...this.quarters.slice(half)];
    }
  }

  replace(steps: readonly number[], loss: readonly number[], quarters?: readonly (readonly (number | null)[])[]): void {
    this.steps = [];
    this.loss = [];
    this.quarters = [];
    steps.forEach((s, i) => this.add(s, loss[i], quarters?.[i]));
  }

  /** Whether any step carried a loss by quarter (older runs and checkpoints' histories do not). */
  get hasQuarters(): boolean {
    return this.quarters.some((r) => r.some((v) => v !== null));
  }

  series(weight = 0.9): LossSeries {
    const quarters = Array.from({ length: QUARTERS }, (_, q) => this.quarters.map((r) => r[q]));
    return {
      steps: [...this.steps],
      raw: [...this.loss],
      smooth: smoothSeries(this.loss, weight),
      quarters,
      quarterSmooth: quarters.map((s) => smoothForPlot(s, weight)),
    };
  }

  /** The rows of the quarters by step (for the view's saved state). */
  quarterRows(): (number | null)[][] {
    return this.quarters.map((r) => [...r]);
  }
}

/** The held-out evaluations of a run (ddpm/trainEval): one point per evaluated step, a resumed run replacing the tail. */
export class EvalHistory {
  private points: { step: number; loss: number }[] = [];

  get size(): number {
    return this.points.length;
  }

  add(step: number, loss: number): void {
    while (this.points.length && this.points[this.points.length - 1].step >= step) this.points.pop();
    this.points.push({ step, loss });
  }

  replace(points: readonly { step: number; loss: number }[]): void {
    this.points = [];
    for (const p of points) this.add(p.step, p.loss);
  }

  all(): { step: number; loss: number }[] {
    return this.points.map((p) => ({ ...p }));
  }

  series(): { steps: number[]; loss: number[] } {
    return { steps: this.points.map((p) => p.step), loss: this.points.map((p) => p.loss) };
  }
}

/**
 * The y range of a loss plot: the data with a margin on both sides, in log space on a log axis. uPlot's default log
 * range snaps outwards to whole decades, which pins a loss near 1 to an edge of [1, 10] or [0.1, 1]; this keeps every
 * point inside, a span of at least ×1.5 (log) or 5 % of the value (linear) so that a flat curve is not magnified into
 * noise, and a linear axis of non-negative data above 0. `null` (no data yet) lets uPlot choose.
 */
export function fitRange(min: number | null, max: number | null, log: boolean): [number, number] | null {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return null;
  const MARGIN = 0.08;
  if (log) {
    if (!(min > 0)) return null;
    let lo = Math.log10(min);
    let hi = Math.log10(max);
    const minSpan = Math.log10(1.5);
    if (hi - lo < minSpan) {
      const mid = (lo + hi) / 2;
      [lo, hi] = [mid - minSpan / 2, mid + minSpan / 2];
    }
    const pad = (hi - lo) * MARGIN;
    return [10 ** (lo - pad), 10 ** (hi + pad)];
  }
  let [lo, hi] = [min, max];
  const minSpan = Math.max(Math.abs(max) * 0.05, 1e-6);
  if (hi - lo < minSpan) {
    const mid = (lo + hi) / 2;
    [lo, hi] = [mid - minSpan / 2, mid + minSpan / 2];
  }
  const pad = (hi - lo) * MARGIN;
  return [min >= 0 ? Math.max(0, lo - pad) : lo - pad, hi + pad];
}

/**
 * Ticks of a log axis over [min, max]: over a decade or more, the powers of ten and, while few enough, 2× and 5×
 * (or every mantissa); within less than a decade (a loss near 1 over [0.79, 1.26]), evenly spaced round values, as a
 * linear axis has, since mantissa ticks alone would leave one or two. At most `most` ticks (what the plot's height
 * has room for).
 */
export function logTicks(min: number, max: number, most = 8): number[] {
  if (!(min > 0) || !(max > min)) return [];
  const inside = (v: number) => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  const round = (v: number) => Number(v.toPrecision(12));
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  for (const mantissas of Math.log10(max / min) < 1 ? [] : [[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 5], [1]]) {
    const ticks: number[] = [];
    for (let k = lo; k <= hi; k++)
      for (const m of mantissas) if (inside(round(m * 10 ** k))) ticks.push(round(m * 10 ** k));
    if (ticks.length >= 3 && ticks.length <= most) return ticks;
    if (ticks.length < 3) break;
    if (mantissas.length === 1) {
      // Many decades: every n-th power of ten.
      const every = Math.ceil(ticks.length / most);
      return ticks.filter((v) => Math.round(Math.log10(v)) % every === 0);
    }
  }
  // Less than a decade: the finest round step (1, 2 or 5 × 10^k) that gives at most `most` ticks, and at least 2.
  const span = max - min;
  for (let k = Math.floor(Math.log10(span)) - 1; k <= Math.ceil(Math.log10(span)); k++) {
    for (const m of [1, 2, 5]) {
      const step = m * 10 ** k;
      const first = Math.ceil(min / step - 1e-9);
      const n = Math.floor(max / step + 1e-9) - first + 1;
      if (n <= most) return n >= 2 ? Array.from({ length: n }, (_, i) => round((first + i) * step)) : [min, max];
    }
  }
  return [min, max];
}

/** A tick's label: up to 3 significant digits, no exponent for the values a loss takes. */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-4) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}
