/**
 * Dawn (the `webgpu` package's native WebGPU) logs straight to file descriptor 2 from C++: on a machine without
 * Vulkan every run prints "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file …" and a
 * source location, although the CLI then reports the backend it chose and why. dawn.node exposes no switch or
 * logging callback for these instance-level messages (its `create()` flags only choose backends and toggles), and a
 * JavaScript process cannot redirect its own fd 2, so the command line runs its work in a child process whose stderr
 * is a pipe, and passes that stderr on without Dawn's log blocks. `--verbose` (or DDPM_VERBOSE=1) keeps everything.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { STDERR_COLUMNS_ENV, STDERR_TTY_ENV } from './cliProgress.ts';

/** Set in the child: it does the work and is not filtered again. */
export const FILTERED_CHILD_ENV = 'DDPM_CLI_CHILD';

/** The first line of a Dawn log message: dawn::{Debug,Info,Warning,Error}Log write "<Severity>: <message>". */
const SEVERITY = /^(Debug|Info|Warning|Error): /;
/** Dawn appends where the message came from: "    at operator() (…/src/dawn/native/vulkan/BackendVk.cpp:368)". */
const NATIVE_FRAME = /^\s+at .*\([^()]*\.(?:cpp|cc|h|mm):\d+\)\s*$/;
/** The severities whose lines only Dawn writes at the start of a line (ours are lower case: "warning: …"). */
const DAWN_ONLY = /^(Debug|Info|Warning): /;

/** Could `partial` (a line without its end yet) still become the first line of a Dawn message? */
function mayBecomeSeverity(partial: string): boolean {
  return ['Debug: ', 'Info: ', 'Warning: ', 'Error: '].some((p) => p.startsWith(partial) || partial.startsWith(p));
}

/**
 * A stateful filter of a stderr text stream: `push` takes a chunk and returns what to pass on, `flush` the rest at the
 * end. It drops Dawn's messages: a "Debug:/Info:/Warning:" line with the native source frames and blank line after
 * it, and an "Error:" line only when a native (C++) frame follows, since Node writes "Error: …" for JavaScript errors
 * too (their frames are .js/.ts files with line:column). Text that cannot start a Dawn message is passed on at once,
 * even without its line end, so that a progress bar redrawn with carriage returns stays live.
 */
export class NativeLogFilter {
  /** The current line's text so far (not yet passed on). */
  private pending = '';
  /** The current line has been passed on in part: the rest of it is passed on too. */
  private passing = false;
  /** Inside a Dawn message: dropping its frames and the blank line that ends it. */
  private inMessage = false;
  /** An "Error:" line held until the next line says whose it is. */
  private heldError: string | null = null;

  push(chunk: string): string {
    let out = '';
    let rest = chunk;
    for (;;) {
      const nl = rest.indexOf('\n');
      if (nl < 0) break;
      const piece = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (this.passing) {
        out += `${piece}\n`;
        this.passing = false;
      } else out += this.line(this.pending + piece);
      this.pending = '';
    }
    if (rest) {
      if (this.passing) out += rest;
      else {
        this.pending += rest;
        const text = this.pending.replace(/\r/g, '');
        if (!this.inMessage && this.heldError === null && !mayBecomeSeverity(text)) {
          out += this.pending;
          this.pending = '';
          this.passing = true;
        }
      }
    }
    return out;
  }

  flush(): string {
    let out = '';
    if (this.heldError !== null) out += `${this.heldError}\n`;
    this.heldError = null;
    if (this.pending && !(this.inMessage && (NATIVE_FRAME.test(this.pending) || this.pending.trim() === '')))
      out += this.pending;
    this.pending = '';
    this.inMessage = false;
    return out;
  }

  /** One complete line (without its '\n'): what to pass on. */
  private line(text: string): string {
    if (this.heldError !== null) {
      const held = this.heldError;
      this.heldError = null;
      if (NATIVE_FRAME.test(text)) {
        this.inMessage = true;
        return '';
      }
      return `${held}\n${this.line(text)}`;
    }
    if (this.inMessage) {
      if (NATIVE_FRAME.test(text)) return '';
      this.inMessage = false;
      if (text.trim() === '') return '';
    }
    if (DAWN_ONLY.test(text)) {
      this.inMessage = true;
      return '';
    }
    if (SEVERITY.test(text)) {
      this.heldError = text;
      return '';
    }
    return `${text}\n`;
  }
}

/**
 * Runs `script argv` in a child node process and passes its stderr through NativeLogFilter; stdin and stdout are the
 * child's own. The child is told whether the user's stderr is a terminal (for the progress bar and colour). Resolves
 * with the child's exit status (128 + n when a signal ended it).
 *
 * Signals: on POSIX the child runs in its own process group, so that Ctrl-C reaches it once, forwarded from here (a
 * training run then saves a checkpoint; a second Ctrl-C quits at once), whether it came from the terminal or from
 * `kill -INT`. On Windows the console delivers Ctrl-C to both processes and this one ignores it. If this process dies
 * the child sees its IPC channel close and quits.
 */
export function runFiltered(script: string, argv: string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [FILTERED_CHILD_ENV]: '1' };
  if (process.stderr.isTTY) {
    env[STDERR_TTY_ENV] = '1';
    if (process.stderr.columns) env[STDERR_COLUMNS_ENV] = String(process.stderr.columns);
  }
  const posix = process.platform !== 'win32';
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    env,
    detached: posix,
    windowsHide: true,
  });
  const filter = new NativeLogFilter();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const out = filter.push(chunk);
    if (out) process.stderr.write(out);
  });
  const forward = (signal: NodeJS.Signals) => () => {
    if (posix) child.kill(signal);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      const rest = filter.flush();
      if (rest) process.stderr.write(rest);
      resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}

/** In the child: quit when the filtering parent is gone (its IPC channel closes), without keeping the loop alive. */
export function exitWithParent(): void {
  if (!process.channel) return;
  process.channel.unref();
  process.on('disconnect', () => process.exit(129));
}
