/**
 * Opening files that a user pointed at (checkpoints, dataset files) without trusting what they are.
 *
 * A named pipe (FIFO) called `x.safetensors` blocks `open()` until a writer appears, and a read on it blocks until
 * data arrives: the sidecar (and a training job in it) would hang. So files are opened non-blocking and refused
 * unless they are regular files, before a byte is read. Reads are chunked: one `read()` returns at most about
 * 2 GiB (Linux caps a read at 0x7ffff000 bytes), so a single call would misreport a larger tensor as truncated.
 */
import fs from 'node:fs';

/** Largest single read; below the ~2 GiB a read() returns at most, and a bounded temporary buffer. */
export const READ_CHUNK_BYTES = 64 * 1024 * 1024;

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** Thrown for a path that exists but is not a regular file (a folder, a pipe, a device). */
export class NotRegularFileError extends Error {
  override name = 'NotRegularFileError';
}

/**
 * Opens `file` for reading, refusing anything but a regular file before reading from it (and without blocking on a
 * FIFO: O_NONBLOCK where the platform has it). The caller closes the descriptor. ENOENT propagates as is.
 */
export function openRegularFile(file: string): number {
  // lstat would refuse symlinks to regular files, which are fine; stat follows them to what would be opened.
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isFile()) throw new NotRegularFileError(`${file} is ${kindOf(st)}, not a regular file`);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    // It may have been swapped for a pipe between the stat and the open.
    const again = fs.fstatSync(fd);
    if (!again.isFile()) throw new NotRegularFileError(`${file} is ${kindOf(again)}, not a regular file`);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * Fills `buf[offset, offset + length)` from `fd` at `position`, in chunks; returns the bytes read (less than
 * `length` only at the end of the file).
 */
export function readFully(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const got = fs.readSync(fd, buf, offset + done, Math.min(READ_CHUNK_BYTES, length - done), position + done);
    if (got === 0) break;
    done += got;
  }
  return done;
}

/**
 * A whole regular file, refused before reading when it is larger than `maxBytes` (`what` names the limit in the
 * message).
 */
export function readRegularFile(file: string, maxBytes: number, what = 'the file'): Buffer {
  const fd = openRegularFile(file);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > maxBytes)
      throw new Error(
        `${file}: ${what} is ${size.toLocaleString('en-US')} bytes, over the limit of ${maxBytes.toLocaleString('en-US')}`,
      );
    const buf = Buffer.allocUnsafe(size);
    const got = readFully(fd, buf, 0, size, 0);
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}
