/**
 * The trajectory timeline: the frames recorded so far (in step order), which one is shown, and whether the view
 * follows the newest frame (live) or was scrubbed back by the user. Pure logic, unit-tested.
 */
export interface Frame {
  index: number;
  t: number;
  xt: string;
  x0: string;
}

export class Timeline {
  private frames: Frame[] = [];
  private selected = -1;
  /** True while the slider sits on the newest frame: new frames move it along. */
  live = true;

  get length(): number {
    return this.frames.length;
  }

  get current(): Frame | undefined {
    return this.frames[this.selected];
  }

  get position(): number {
    return this.selected;
  }

  clear(): void {
    this.frames = [];
    this.selected = -1;
    this.live = true;
  }

  add(f: Frame): void {
    // Frames arrive in order, but keep the invariant even if one is late.
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1].index > f.index) i--;
    if (this.frames[i - 1]?.index === f.index) this.frames[i - 1] = f;
    else this.frames.splice(i, 0, f);
    if (this.live) this.selected = this.frames.length - 1;
  }

  /** Moves to a frame (clamped); leaving the newest frame stops following. */
  select(pos: number): Frame | undefined {
    if (this.frames.length === 0) return undefined;
    this.selected = Math.max(0, Math.min(this.frames.length - 1, Math.round(pos)));
    this.live = this.selected === this.frames.length - 1;
    return this.current;
  }

  all(): readonly Frame[] {
    return this.frames;
  }
}

/** Steps per second over the last `window` step timestamps (ms). */
export function stepRate(times: readonly number[], window = 10): number {
  if (times.length < 2) return 0;
  const recent = times.slice(-window);
  const span = (recent[recent.length - 1] - recent[0]) / 1000;
  return span > 0 ? (recent.length - 1) / span : 0;
}

/**
 * "step 12/50 · 2.5 steps/s · 16 s left", or at under a step per second (a 256×256 model on a CPU) "· 27.1 s/step ·
 * 17 min left": the progress line of a sampling run from its step rate (0 while unknown).
 */
export function stepProgressText(done: number, total: number, rate: number): string {
  const speed = rate <= 0 ? '' : rate >= 1 ? ` · ${rate.toFixed(1)} steps/s` : ` · ${(1 / rate).toFixed(1)} s/step`;
  const left = total - done;
  let eta = '';
  if (rate > 0 && left > 0) {
    const s = left / rate;
    eta =
      s < 90
        ? ` · ${Math.ceil(s)} s left`
        : s < 5400
          ? ` · ${Math.round(s / 60)} min left`
          : ` · ${(s / 3600).toFixed(1)} h left`;
  }
  return `step ${done}/${total}${speed}${eta}`;
}
