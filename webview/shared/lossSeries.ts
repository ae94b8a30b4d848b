/**
 * Loss curve data for the training view: raw points, an exponentially smoothed series (TensorBoard-style, with
 * bias correction so the start is not dragged to 0), and a bound on the number of points drawn. Pure logic.
 */
export interface LossSeries {
  steps: number[];
  raw: number[];
  smooth: number[];
}

export function smoothSeries(values: readonly number[], weight = 0.9): number[] {
  const out: number[] = [];
  let acc = 0;
  let norm = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      out.push(out.length ? out[out.length - 1] : NaN);
      continue;
    }
    acc = weight * acc + (1 - weight) * v;
    norm = weight * norm + (1 - weight);
    out.push(acc / norm);
  }
  return out;
}

export class LossHistory {
  private steps: number[] = [];
  private loss: number[] = [];

  constructor(private readonly maxPoints = 5000) {}

  get size(): number {
    return this.steps.length;
  }

  /** Adds a point; a step at or before the last one (a resumed run) replaces the tail from there. */
  add(step: number, loss: number): void {
    while (this.steps.length && this.steps[this.steps.length - 1] >= step) {
      this.steps.pop();
      this.loss.pop();
    }
    this.steps.push(step);
    this.loss.push(loss);
    if (this.steps.length > this.maxPoints) {
      // Halve the resolution of the older half: long runs keep their shape at bounded cost.
      const half = Math.floor(this.steps.length / 2);
      const s: number[] = [];
      const l: number[] = [];
      for (let i = 0; i < half; i += 2) {
        s.push(this.steps[Math.min(i + 1, half - 1)]);
        l.push((this.loss[i] + this.loss[Math.min(i + 1, half - 1)]) / 2);
      }
      this.steps = [...s, ...this.steps.slice(half)];
      this.loss = [...l, ...this.loss.slice(half)];
    }
  }

  replace(steps: readonly number[], loss: readonly number[]): void {
    this.steps = [];
    this.loss = [];
    steps.forEach((s, i) => this.add(s, loss[i]));
  }

  series(weight = 0.9): LossSeries {
    return { steps: [...this.steps], raw: [...this.loss], smooth: smoothSeries(this.loss, weight) };
  }
}
