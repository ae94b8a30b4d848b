/**
 * A guard on the stdio transport's framing (LSP base protocol: `Content-Length: N\r\n` headers, a blank line, N bytes).
 *
 * vscode-jsonrpc's reader, given a header it cannot use (no Content-Length, or one that is not a number), reports an
 * error and goes on reading from the middle of a message: every later header is garbage, and the process stays alive
 * answering nothing. A Content-Length of 10^15 makes it buffer input for ever. Nothing can tell where the next message
 * starts after such a header, so the guard does not guess: it stops the stream and says why, and the sidecar exits
 * with that message (a running training job saves first), which a client sees as a closed connection at once rather
 * than requests that never come back.
 *
 * Sound messages pass through unchanged (a header once it is complete and sound, the body as it comes).
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { LIMITS } from './limits.ts';

const HEADER_END = Buffer.from('\r\n\r\n');
/** Longer header blocks are not headers (ours are one line of ~20 bytes, two with Content-Type). */
const MAX_HEADER_BYTES = 8192;

export class FramingGuard extends Transform {
  /** Bytes of the current message's body still to pass; -1 while reading headers. */
  private remaining = -1;
  private header = Buffer.alloc(0);
  private failed = false;

  constructor(
    private readonly onCorrupt: (why: string) => void,
    private readonly maxMessageBytes: number = LIMITS.messageBytes,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.failed) return done();
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        this.push(chunk.subarray(at, at + take));
        this.remaining -= take;
        at += take;
        if (this.remaining === 0) this.remaining = -1;
        continue;
      }
      // Headers: held back until the blank line, and passed on only when they are sound.
      const before = this.header.length;
      this.header = Buffer.concat([this.header, chunk.subarray(at)]);
      const end = this.header.indexOf(HEADER_END);
      if (end < 0) {
        if (this.header.length > MAX_HEADER_BYTES) return this.fail('a header block longer than 8 KB', done);
        break;
      }
      const problem = this.check(this.header.subarray(0, end).toString('latin1'));
      if (problem) return this.fail(problem, done);
      this.push(this.header.subarray(0, end + HEADER_END.length));
      at += end + HEADER_END.length - before;
      this.header = Buffer.alloc(0);
      if (this.remaining === 0) this.remaining = -1;
    }
    done();
  }

  /** The problem with one header block, or null (and `remaining` set to its Content-Length). */
  private check(block: string): string | null {
    let length: string | undefined;
    for (const line of block.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) return `a malformed header line ${JSON.stringify(line.slice(0, 80))}`;
      if (line.slice(0, colon).trim().toLowerCase() === 'content-length') length = line.slice(colon + 1).trim();
    }
    if (length === undefined) return 'a message without a Content-Length header';
    if (!/^\d{1,16}$/.test(length))
      return `a Content-Length that is not a number (${JSON.stringify(length.slice(0, 40))})`;
    const n = Number(length);
    if (n > this.maxMessageBytes)
      return `a Content-Length of ${n.toLocaleString('en-US')} bytes, over the limit of ${this.maxMessageBytes.toLocaleString('en-US')}`;
    this.remaining = n;
    return null;
  }

  private fail(why: string, done: TransformCallback): void {
    this.failed = true;
    this.header = Buffer.alloc(0);
    done();
    this.onCorrupt(`the JSON-RPC stream on stdin is corrupt: ${why}`);
  }
}

/** `input` piped through a FramingGuard: what the message reader reads instead of `input`. */
export function guardFraming(input: Readable, onCorrupt: (why: string) => void): Readable {
  return input.pipe(new FramingGuard(onCorrupt));
}
