/**
 * How the `ddpm` command line talks to a terminal: colour only where it is wanted (https://no-color.org), and progress
 * as a bar redrawn in place on a terminal but as a plain line every few seconds in a log or a pipe. Progress and
 * messages go to stderr and results to stdout, so the terminal that matters for both decisions is stderr's.
 */

/** Where progress and messages go: process.stderr, or a stand-in in tests. */
export interface TextStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/**
 * Set by the CLI's stderr filter (cliNativeLog.ts) for the process it runs: that process writes stderr into a pipe,
 * but what the user sees is the filter's stderr.
 */
export const STDERR_TTY_ENV = 'DDPM_STDERR_TTY';
export const STDERR_COLUMNS_ENV = 'DDPM_STDERR_COLUMNS';

/** process.stderr as the user sees it (a terminal or not, how wide). */
export function userStderr(env: NodeJS.ProcessEnv = process.env): TextStream {
  const s = process.stderr;
  const columns = s.columns ?? (Number(env[STDERR_COLUMNS_ENV]) || undefined);
  return { isTTY: s.isTTY === true || env[STDERR_TTY_ENV] === '1', columns, write: (t) => s.write(t) };
}

/**
 * Whether to colour what goes to `stream`: never when NO_COLOR is set to anything but the empty string (no-color.org),
 * always when FORCE_COLOR is set (but to 0 or false), otherwise only on a terminal that is not TERM=dumb.
 */
export function colorEnabled(stream: Pick<TextStream, 'isTTY'>, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return stream.isTTY === true && env.TERM !== 'dumb';
}

const SGR = { red: 31, green: 32, yellow: 33, bold: 1, dim: 2 } as const;
export type Style = keyof typeof SGR;

/** `text` in the given SGR style when `on`, else unchanged. */
export function paint(on: boolean, style: Style, text: string): string {
  return on ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text;
}

const BAR_WIDTH = 24;

/** A progress bar of `done`/`total` in 24 cells (the terminal text, no colour). */
export function barText(done: number, total: number): string {
  const filled = total > 0 ? Math.max(0, Math.min(BAR_WIDTH, Math.round((done / total) * BAR_WIDTH))) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

export interface Progress {
  /** The state after `done` of `total` units; `text` follows the bar (counts, rate, ETA). */
  update(done: number, total: number, text: string): void;
  /** Ends the bar's line on a terminal (nothing otherwise); called by `update` when done reaches total. */
  end(): void;
}

/** The bar whose line is on the terminal now, unfinished: a message printed meanwhile ends that line first. */
let onScreen: Progress | null = null;

/** Before printing a line to the stream a bar is drawn on: end the bar's line so the message does not overwrite it. */
export function clearProgressLine(): void {
  onScreen?.end();
}

/**
 * Progress on `stream`: on a terminal the bar is redrawn in place (carriage return, padded over the previous line,
 * cut to the terminal's width so that it never wraps); otherwise a plain line every `intervalMs` and the last one, so
 * that a log holds a readable record rather than thousands of carriage returns.
 */
export function progressBar(
  stream: TextStream,
  options: { intervalMs?: number; now?: () => number; color?: boolean } = {},
): Progress {
  const interval = options.intervalMs ?? 5000;
  const now = options.now ?? Date.now;
  const color = options.color ?? false;
  let lastPrint = -Infinity;
  let shown = 0;
  const self: Progress = {
    update(done, total, text) {
      const bar = barText(done, total);
      if (stream.isTTY) {
        const max = stream.columns && stream.columns > 20 ? stream.columns - 1 : Infinity;
        const plain = `${bar} ${text}`.slice(0, max);
        const painted = paint(color, 'green', plain.slice(0, bar.length)) + plain.slice(bar.length);
        stream.write(`\r${painted}${' '.repeat(Math.max(0, shown - plain.length))}`);
        shown = plain.length;
        onScreen = self;
        if (done >= total) self.end();
      } else if (now() - lastPrint >= interval || done >= total) {
        stream.write(`${bar} ${text}\n`);
        lastPrint = now();
      }
    },
    end() {
      if (shown > 0) stream.write('\n');
      shown = 0;
      if (onScreen === self) onScreen = null;
    },
  };
  return self;
}
