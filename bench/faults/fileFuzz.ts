/**
 * Fault figure: N mutated safetensors checkpoints and N mutated IDX files, opened the way the sidecar opens them.
 *
 *   flock /tmp/ddpm-heavy.lock nice -n 5 node --import tsx bench/faults/fileFuzz.ts [--files 1000] [--seed 1] [--json]
 *
 * The bases are a real checkpoint (the tiny preset at 28×28, T = 20, model and EMA weights) and a real IDX pair (64
 * images, 28×28, with labels; raw and gzipped). Each mutation is one of: random bytes overwritten, the file cut short,
 * bytes appended, the header length changed, numbers in the JSON header replaced (by huge, negative, fractional
 * values), a dtype, shape or offsets changed, metadata values (T, sizes, the loss history) made hostile, IDX
 * dimensions replaced, a gzip bomb. Each checkpoint is inspected, then sampled from (one image, one DDIM step); each
 * IDX file is opened as a dataset and three images are read. The outcome must be a result or an error the sidecar
 * reports as bad input / not found (never an internal error or a crash), within bounded time and memory: reported
 * are the counts by outcome, the slowest file and the process's peak memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { openDataset } from '../../sidecar/data/open.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { inspectCheckpoint } from '../../sidecar/jobs/inspect.ts';
import { sampleCheckpoint } from '../../sidecar/jobs/sampleCheckpoint.ts';
import { saveTinyCheckpoint } from '../../test/helpers/tinyCheckpoint.ts';

const { values: opts } = parseArgs({
  options: {
    files: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(opts.files);
const rng = new Rng(Number(opts.seed));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-fault-files-'));
const log = (m: string) => process.stderr.write(`${m}\n`);
const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];

const HOSTILE_NUMBERS = [0, -1, 1, 2 ** 31, 2 ** 32 + 7, 2 ** 53, 1e308, 0.5, 1e9, 65536, 10001, 100001];

function flipBytes(b: Buffer, from = 0): Buffer {
  const c = Buffer.from(b);
  for (let i = 0, n = 1 + rng.int(20); i < n; i++) c[from + rng.int(c.length - from)] = rng.int(256);
  return c;
}

/** The header JSON of a safetensors buffer, and a function that puts a changed one back (the data section as is). */
function splitHeader(b: Buffer): { json: string; rebuild: (j: string) => Buffer } {
  const len = Number(b.readBigUInt64LE(0));
  const json = b.subarray(8, 8 + len).toString('utf8');
  return {
    json,
    rebuild: (j: string) => {
      const jb = Buffer.from(j, 'utf8');
      const lb = Buffer.alloc(8);
      lb.writeBigUInt64LE(BigInt(jb.length));
      return Buffer.concat([lb, jb, b.subarray(8 + len)]);
    },
  };
}

function mutateSafetensors(base: Buffer): { kind: string; bytes: Buffer } {
  const kinds = ['flip', 'flip-header', 'truncate', 'append', 'length', 'json-number', 'json-field', 'meta'];
  const kind = pick(kinds);
  const { json, rebuild } = splitHeader(base);
  switch (kind) {
    case 'flip':
      return { kind, bytes: flipBytes(base) };
    case 'flip-header': {
      const c = Buffer.from(base);
      for (let i = 0, n = 1 + rng.int(5); i < n; i++) c[rng.int(8 + json.length)] = rng.int(256);
      return { kind, bytes: c };
    }
    case 'truncate':
      return { kind, bytes: base.subarray(0, rng.int(base.length)) };
    case 'append':
      return { kind, bytes: Buffer.concat([base, Buffer.alloc(1 + rng.int(5000), rng.int(256))]) };
    case 'length': {
      const c = Buffer.from(base);
      c.writeBigUInt64LE(BigInt(pick([0, 1, 7, json.length - 1, json.length + 1, 2 ** 40, 2 ** 63 - 1])));
      return { kind, bytes: c };
    }
    case 'json-number': {
      // Replace some of the numbers in the header (shapes, offsets) with hostile ones.
      let k = 0;
      const target = rng.int(200);
      const j = json.replace(/-?\d+(\.\d+)?/g, (m) =>
        k++ % 200 === target || rng.uniform() < 0.01 ? String(pick(HOSTILE_NUMBERS)) : m,
      );
      return { kind, bytes: rebuild(j) };
    }
    case 'json-field': {
      const h = JSON.parse(json) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
      const names = Object.keys(h).filter((n) => n !== '__metadata__');
      const t = h[pick(names)];
      const op = rng.int(5);
      if (op === 0) t.dtype = pick(['I64', 'U8', 'F8_E4M3', 'BF16', 'F64', 'Q4', '']);
      else if (op === 1) t.shape = [...t.shape, pick(HOSTILE_NUMBERS)];
      else if (op === 2) t.shape = t.shape.map(() => pick(HOSTILE_NUMBERS));
      else if (op === 3) t.data_offsets = [pick(HOSTILE_NUMBERS), pick(HOSTILE_NUMBERS)];
      else delete h[pick(names)];
      return { kind, bytes: rebuild(JSON.stringify(h)) };
    }
    default: {
      // Hostile metadata: our checkpoint's own JSON.
      const h = JSON.parse(json) as { __metadata__: { ddpm: string } };
      const meta = JSON.parse(h.__metadata__.ddpm) as Record<string, unknown> & {
        model: Record<string, unknown>;
        schedule: Record<string, unknown>;
      };
      const op = rng.int(8);
      if (op === 0) meta.schedule.T = pick([1e9, 0, -5, 1.5, '20', 10_000, 10_001]);
      else if (op === 1) meta.model.imageSize = pick([1e6, 0, 29, 56, -28]);
      else if (op === 2) meta.model.chMult = pick([[], new Array(50).fill(1), [1e6], 'x']);
      else if (op === 3)
        meta.lossHistory = pick([
          { steps: [1], loss: ['x'] },
          { steps: 5 },
          { steps: new Array(200_000).fill(1), loss: new Array(200_000).fill(1) },
          null,
        ]);
      else if (op === 4) meta.model.numClasses = pick([1e9, 3, -1]);
      else if (op === 5) meta.preset = '\x1b]52;c;aGk=\x07';
      else if (op === 6) meta.schedule.kind = pick(['cosine', 'quadratic', 5]);
      else meta.model.ch = pick([1e7, 7, 0, 3.5]);
      h.__metadata__.ddpm = JSON.stringify(meta);
      return { kind: 'meta', bytes: rebuild(JSON.stringify(h)) };
    }
  }
}

function idxImages(n: number, h: number, w: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x00000803, 0);
  head.writeUInt32BE(n, 4);
  head.writeUInt32BE(h, 8);
  head.writeUInt32BE(w, 12);
  return Buffer.concat([head, Buffer.from(Array.from({ length: n * h * w }, () => rng.int(256)))]);
}

function mutateIdx(base: Buffer): { kind: string; bytes: Buffer; gz: boolean } {
  const kind = pick(['flip', 'flip-header', 'truncate', 'append', 'dims', 'gzip', 'gzip-flip', 'bomb']);
  switch (kind) {
    case 'flip':
      return { kind, bytes: flipBytes(base), gz: false };
    case 'flip-header':
      return {
        kind,
        bytes: flipBytes(base.subarray(0, 16)).length
          ? Buffer.concat([flipBytes(base.subarray(0, 16)), base.subarray(16)])
          : base,
        gz: false,
      };
    case 'truncate':
      return { kind, bytes: base.subarray(0, rng.int(base.length)), gz: false };
    case 'append':
      return { kind, bytes: Buffer.concat([base, Buffer.alloc(rng.int(1000), 7)]), gz: false };
    case 'dims': {
      const c = Buffer.from(base);
      c.writeUInt32BE(
        pick(HOSTILE_NUMBERS.filter((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)),
        4 + 4 * rng.int(3),
      );
      if (rng.uniform() < 0.3) c[3] = pick([0, 1, 2, 4, 255]);
      if (rng.uniform() < 0.3) c[2] = pick([0x09, 0x0b, 0x0d, 0x0e]);
      return { kind, bytes: c, gz: false };
    }
    case 'gzip':
      return { kind, bytes: zlib.gzipSync(rng.uniform() < 0.5 ? base : flipBytes(base)), gz: true };
    case 'gzip-flip':
      return { kind, bytes: flipBytes(zlib.gzipSync(base), 10), gz: true };
    default: {
      // A gzip bomb: a valid header claiming 3 GB of images, then zeros (compresses ~1000:1).
      const head = Buffer.alloc(16);
      head.writeUInt32BE(0x00000803, 0);
      head.writeUInt32BE(3_000_000, 4);
      head.writeUInt32BE(32, 8);
      head.writeUInt32BE(32, 12);
      const gz = zlib.createGzip({ level: 9 });
      const chunks: Buffer[] = [];
      gz.on('data', (c: Buffer) => chunks.push(c));
      // Built synchronously from a repeated block: 16 MB of zeros → ~16 KB, repeated.
      const block = zlib.gzipSync(Buffer.concat([head, Buffer.alloc(16 * 2 ** 20)]));
      const zeros = zlib.gzipSync(Buffer.alloc(16 * 2 ** 20));
      // Concatenated gzip members inflate to their concatenation: 16 + 190 × 16 MB ≈ 3 GB.
      return { kind, bytes: Buffer.concat([block, ...new Array(190).fill(zeros)]), gz: true };
    }
  }
}

type Outcome = 'ok' | 'bad-input' | 'not-found' | 'other-error';

void (async () => {
  await initBackend('wasm');
  const t0 = Date.now();
  const ckpt = path.join(work, 'base.safetensors');
  saveTinyCheckpoint(ckpt, 20);
  const baseCk = fs.readFileSync(ckpt);
  const baseIdx = idxImages(64, 28, 28);
  const labels = Buffer.concat([
    Buffer.from([0, 0, 8, 1, 0, 0, 0, 64]),
    Buffer.from(Array.from({ length: 64 }, (_, i) => i % 10)),
  ]);
  const result = {
    safetensors: {
      files: 0,
      byOutcome: {} as Record<string, number>,
      byKind: {} as Record<string, Record<string, number>>,
    },
    idx: { files: 0, byOutcome: {} as Record<string, number>, byKind: {} as Record<string, Record<string, number>> },
    otherErrors: [] as string[],
    slowest: { ms: 0, what: '' },
    peakRssMB: 0,
    seconds: 0,
  };
  const count = (r: typeof result.safetensors, kind: string, o: Outcome) => {
    r.files++;
    r.byOutcome[o] = (r.byOutcome[o] ?? 0) + 1;
    (r.byKind[kind] ??= {})[o] = (r.byKind[kind][o] ?? 0) + 1;
  };
  const judge = (e: unknown, what: string): Outcome => {
    const k = classifyError(e);
    if (k === 'bad-input' || k === 'not-found' || k === 'params') return k === 'params' ? 'bad-input' : k;
    if (result.otherErrors.length < 20)
      result.otherErrors.push(`${what}: ${k}: ${(e as Error).message?.slice(0, 300)}`);
    return 'other-error';
  };
  const timed = async (what: string, f: () => Promise<void>) => {
    const s = Date.now();
    await f();
    const ms = Date.now() - s;
    if (ms > result.slowest.ms) result.slowest = { ms, what };
    result.peakRssMB = Math.max(result.peakRssMB, Math.round(process.memoryUsage().rss / 2 ** 20));
  };
  const tensorsBefore = tf.memory().numTensors;

  for (let i = 0; i < N; i++) {
    const m = mutateSafetensors(baseCk);
    const file = path.join(work, `m${i}.safetensors`);
    fs.writeFileSync(file, m.bytes);
    await timed(`safetensors #${i} (${m.kind})`, async () => {
      let o: Outcome = 'ok';
      try {
        inspectCheckpoint(file);
        await sampleCheckpoint({
          checkpoint: file,
          n: 1,
          sampler: 'ddim',
          steps: 1,
          spacing: 'trailing',
          eta: 1,
          seed: 0,
          class: 'each',
          guidance: 0,
          ema: true,
          frames: 0,
          workers: 1,
        });
      } catch (e) {
        o = judge(e, `safetensors #${i} (${m.kind})`);
      }
      count(result.safetensors, m.kind, o);
    });
    fs.rmSync(file);
    if (i % 100 === 99) log(`${i + 1} checkpoints: ${JSON.stringify(result.safetensors.byOutcome)}`);
  }

  for (let i = 0; i < N; i++) {
    const m = mutateIdx(baseIdx);
    const dir = path.join(work, `idx${i}`);
    fs.mkdirSync(dir);
    const file = path.join(dir, `train-images-idx3-ubyte${m.gz ? '.gz' : ''}`);
    fs.writeFileSync(file, m.bytes);
    fs.writeFileSync(
      path.join(dir, `train-labels-idx1-ubyte${m.gz ? '.gz' : ''}`),
      m.gz ? zlib.gzipSync(labels) : labels,
    );
    await timed(`idx #${i} (${m.kind})`, async () => {
      let o: Outcome = 'ok';
      try {
        const d = await openDataset(`idx:${file}`, { imageSize: 28, channels: 1 });
        await d.read([0, Math.floor(d.size / 2), d.size - 1]);
      } catch (e) {
        o = judge(e, `idx #${i} (${m.kind})`);
      }
      count(result.idx, m.kind, o);
    });
    fs.rmSync(dir, { recursive: true });
    if (i % 100 === 99) log(`${i + 1} IDX files: ${JSON.stringify(result.idx.byOutcome)}`);
  }
  result.seconds = Math.round((Date.now() - t0) / 1000);
  const leaked = tf.memory().numTensors - tensorsBefore;
  fs.rmSync(work, { recursive: true, force: true });
  const out = { ...result, leakedTensors: leaked };
  if (opts.json) console.log(JSON.stringify(out, null, 2));
  else log(JSON.stringify(out, null, 2));
  process.exitCode = result.otherErrors.length === 0 && leaked === 0 ? 0 : 1;
})();
