/**
 * The directory of a ZIP archive whose entries are stored (not compressed), read with positioned reads: the layout
 * torch.save writes since PyTorch 1.6 (PyTorchStreamWriter over miniz, ZIP_STORED, data 64-byte aligned, ZIP64
 * records for large files). Only offsets are read here; a tensor's bytes are read later, in place, from the file.
 * Hand-written rather than a library: the stored-only directory is ~100 lines, and the zip libraries on npm are
 * asynchronous stream readers where we need absolute offsets for chunked random reads (readTensorF32).
 */
import fs from 'node:fs';
import { readFully } from '../files.ts';
import { checkLimit, LIMITS } from '../limits.ts';

export class ZipError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: not a valid zip archive: ${message}`);
    this.name = 'ZipError';
  }
}

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed. */
  method: number;
  size: number;
  localOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function u64(buf: Buffer, at: number, file: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(file, `a 64-bit offset or size (${v}) is out of range`);
  return Number(v);
}

function readAt(fd: number, file: string, pos: number, length: number, what: string): Buffer {
  const buf = Buffer.alloc(length);
  if (readFully(fd, buf, 0, length, pos) !== length) throw new ZipError(file, `the file ends inside ${what}`);
  return buf;
}

/** The entries of the archive open at `fd` (its central directory, ZIP64 included). */
export function readZipDirectory(fd: number, file: string): ZipEntry[] {
  const fileSize = fs.fstatSync(fd).size;
  const tailLength = Math.min(fileSize, 22 + 0xffff + 20);
  const tail = readAt(fd, file, fileSize - tailLength, tailLength, 'its end record');
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--)
    if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) === tail.length) {
      eocd = i;
      break;
    }
  if (eocd < 0) throw new ZipError(file, 'no end-of-central-directory record (truncated, or not a zip file)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === EOCD64_LOCATOR) {
    const at = u64(tail, eocd - 20 + 8, file);
    if (at + 56 > fileSize) throw new ZipError(file, 'its ZIP64 end record lies past the end of the file');
    const rec = readAt(fd, file, at, 56, 'its ZIP64 end record');
    if (rec.readUInt32LE(0) !== EOCD64) throw new ZipError(file, 'its ZIP64 end record has a wrong signature');
    count = u64(rec, 32, file);
    cdSize = u64(rec, 40, file);
    cdOffset = u64(rec, 48, file);
  }
  checkLimit('archiveEntries', count, `entries in ${file}`);
  if (cdSize > LIMITS.headerBytes) checkLimit('headerBytes', cdSize, `the central directory of ${file} (bytes)`);
  if (cdOffset + cdSize > fileSize)
    throw new ZipError(file, 'its central directory lies past the end of the file (truncated?)');
  const cd = readAt(fd, file, cdOffset, cdSize, 'its central directory');
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
      throw new ZipError(file, `central directory entry ${n} is damaged`);
    const method = cd.readUInt16LE(p + 10);
    let size = cd.readUInt32LE(p + 24);
    let compressed = cd.readUInt32LE(p + 20);
    let localOffset = cd.readUInt32LE(p + 42);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > cd.length) throw new ZipError(file, `central directory entry ${n} is damaged`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
    // ZIP64 extra field (id 1): the 64-bit values of the fields that hold 0xFFFFFFFF, in this order.
    for (let x = p + 46 + nameLength; x + 4 <= p + 46 + nameLength + extraLength;) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 1) {
        let q = x + 4;
        const next = () => {
          if (q + 8 > x + 4 + len) throw new ZipError(file, `the ZIP64 field of '${name}' is damaged`);
          const v = u64(cd, q, file);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      x += 4 + len;
    }
    if (method === 0 && compressed !== size)
      throw new ZipError(file, `'${name}' is stored with ${compressed} bytes but says it holds ${size}`);
    entries.push({ name, method, size, localOffset });
    p = end;
  }
  return entries;
}

/** Where a stored entry's bytes begin in the file (after its local header), checked to lie inside the file. */
export function entryDataOffset(fd: number, file: string, e: ZipEntry): number {
  if (e.method !== 0)
    throw new ZipError(
      file,
      `'${e.name}' is compressed (method ${e.method}); torch.save stores its entries uncompressed`,
    );
  const fileSize = fs.fstatSync(fd).size;
  const local = readAt(fd, file, e.localOffset, 30, `the local header of '${e.name}'`);
  if (local.readUInt32LE(0) !== LOCAL) throw new ZipError(file, `the local header of '${e.name}' is damaged`);
  const start = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (start + e.size > fileSize)
    throw new ZipError(
      file,
      `'${e.name}' ends ${start + e.size - fileSize} bytes past the end of the file (truncated?)`,
    );
  return start;
}
