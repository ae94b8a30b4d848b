/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
 * JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`, then the raw
 * little-endian tensor bytes. No code runs on load, which is why checkpoints use it.
 *
 * Reading is bounds-checked before anything is allocated: a file that is too short, a header longer than the file
 * or than MAX_HEADER_BYTES, bad JSON, unknown dtypes, shapes that do not match their byte ranges, ranges outside
 * the data section or overlapping each other all give a SafetensorsError naming the problem. Only the header is
 * read when a file is opened; tensors are read one at a time, on demand.
 */
import fs from 'node:fs';
import { NotRegularFileError, openRegularFile, READ_CHUNK_BYTES, readFully } from '../files.ts';
import { LIMITS } from '../limits.ts';
import { float16ToFloat32, float32ToFloat16 } from './float16.ts';

export const MAX_HEADER_BYTES = LIMITS.headerBytes;

/** Bytes per element of each dtype the format defines. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: not a valid safetensors file: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  headerSize: number;
  metadata: Record<string, string>;
  /** In file order. */
  tensors: TensorEntry[];
}

function parseHeader(file: string, fileSize: number, headerSize: number, json: string): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(file, `header is not JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new SafetensorsError(file, 'header is not a JSON object');
  const dataStart = 8 + headerSize;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  const entries = Object.entries(raw as Record<string, unknown>);
  const count = entries.filter(([name]) => name !== '__metadata__').length;
  if (count > LIMITS.tensors)
    throw new SafetensorsError(
      file,
      `it holds ${count.toLocaleString('en-US')} tensors, over the limit of ${LIMITS.tensors.toLocaleString('en-US')}`,
    );
  for (const [name, value] of entries) {
    if (name === '__metadata__') {
      if (!value || typeof value !== 'object' || Array.isArray(value))
        throw new SafetensorsError(file, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') throw new SafetensorsError(file, `entry '${name}' is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES))
      throw new SafetensorsError(file, `tensor '${name}' has unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new SafetensorsError(file, `tensor '${name}' has an invalid shape`);
    if (e.shape.length > LIMITS.rank)
      throw new SafetensorsError(
        file,
        `tensor '${name}' has ${e.shape.length} dimensions, over the limit of ${LIMITS.rank}`,
      );
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((o) => !Number.isSafeInteger(o) || o < 0)) {
      throw new SafetensorsError(file, `tensor '${name}' has invalid data_offsets`);
    }
    const [b, en] = offs as [number, number];
    if (b > en || en > dataSize)
      throw new SafetensorsError(
        file,
        `tensor '${name}' bytes [${b}, ${en}) lie outside the ${dataSize}-byte data section`,
      );
    const shape = e.shape as number[];
    const elements = shape.reduce((a, d) => a * d, 1);
    if (elements * DTYPE_BYTES[e.dtype] !== en - b) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' is ${en - b} bytes but ${e.dtype}[${shape.join(', ')}] needs ${elements * DTYPE_BYTES[e.dtype]}`,
      );
    }
    tensors.push({ name, dtype: e.dtype, shape, begin: dataStart + b, end: dataStart + en });
  }
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end)
      throw new SafetensorsError(file, `tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
  }
  return { file, fileSize, headerSize, metadata, tensors: sorted };
}

/** Reads and validates only the header (fast for any file size). */
export function readHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openRegularFile(file);
  } catch (e) {
    if (e instanceof NotRegularFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${file}: no such file` : `${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8)
      throw new SafetensorsError(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readFully(fd, lenBuf, 0, 8, 0);
    const len = lenBuf.readBigUInt64LE(0);
    if (len > BigInt(fileSize - 8))
      throw new SafetensorsError(
        file,
        `header length ${len} is longer than the rest of the file (${fileSize - 8} bytes)`,
      );
    if (len > BigInt(MAX_HEADER_BYTES))
      throw new SafetensorsError(file, `header length ${len} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
    const headerSize = Number(len);
    const buf = Buffer.alloc(headerSize);
    if (readFully(fd, buf, 0, headerSize, 8) !== headerSize)
      throw new SafetensorsError(file, 'the header is truncated (the file shrank while it was read)');
    return parseHeader(file, fileSize, headerSize, buf.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

/** Decodes `n` elements of `dtype` from `bytes` into `out` from element `at` (F32, F16, BF16, F64). */
function decodeInto(dtype: string, bytes: Buffer, n: number, out: Float32Array, at: number): void {
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[at + i] = bytes.readFloatLE(i * 4);
      return;
    case 'F16':
      for (let i = 0; i < n; i++) out[at + i] = float16ToFloat32(bytes.readUInt16LE(i * 2));
      return;
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place through a view of the output.
      const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = 0; i < n; i++) bits[at + i] = bytes.readUInt16LE(i * 2) << 16;
      return;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[at + i] = bytes.readDoubleLE(i * 8);
      return;
  }
}

/**
 * One tensor's values as float32 (F32, F16, BF16 and F64 convert; other dtypes are refused). Read and converted in
 * chunks of at most READ_CHUNK_BYTES: any size the format allows, with one chunk of temporary memory.
 */
export function readTensorF32(header: SafetensorsHeader, entry: TensorEntry): Float32Array {
  if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype))
    throw new Error(`tensor '${entry.name}' is ${entry.dtype}; only floating-point tensors can be loaded as weights`);
  const n = entry.shape.reduce((a, d) => a * d, 1);
  const size = DTYPE_BYTES[entry.dtype];
  const out = new Float32Array(n);
  const perChunk = Math.max(1, Math.floor(READ_CHUNK_BYTES / size));
  const chunk = Buffer.allocUnsafe(Math.min(n, perChunk) * size);
  const fd = openRegularFile(header.file);
  try {
    for (let at = 0; at < n; at += perChunk) {
      const count = Math.min(perChunk, n - at);
      const got = readFully(fd, chunk, 0, count * size, entry.begin + at * size);
      if (got !== count * size)
        throw new SafetensorsError(
          header.file,
          `tensor '${entry.name}' is truncated: the file ends ${(entry.end - entry.begin - at * size - got).toLocaleString('en-US')} bytes before the tensor does`,
        );
      decodeInto(entry.dtype, chunk, count, out, at);
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Storage dtype (F32 default; F16 halves the file, and loading restores float32). */
  dtype?: 'F32' | 'F16';
}

/** Serialises tensors and string metadata (tensors in the given order, 8-byte aligned data section). */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata: Record<string, string>): Buffer[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name '${t.name}'`);
    names.add(t.name);
    const n = t.shape.reduce((a, d) => a * d, 1);
    if (n !== t.data.length)
      throw new Error(`tensor '${t.name}': shape [${t.shape}] has ${n} elements but data has ${t.data.length}`);
    const dtype = t.dtype ?? 'F32';
    const size = n * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so that the data section starts 8-byte aligned (as the reference writer does).
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const chunks: Buffer[] = [len, json];
  for (const t of tensors) {
    if ((t.dtype ?? 'F32') === 'F32') {
      const b = Buffer.alloc(t.data.length * 4);
      for (let i = 0; i < t.data.length; i++) b.writeFloatLE(t.data[i], i * 4);
      chunks.push(b);
    } else {
      const b = Buffer.alloc(t.data.length * 2);
      for (let i = 0; i < t.data.length; i++) b.writeUInt16LE(float32ToFloat16(t.data[i]), i * 2);
      chunks.push(b);
    }
  }
  return chunks;
}
