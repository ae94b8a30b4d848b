// Hostile files and requests (issue 16): every bound of sidecar/limits.ts refused with a message that names the value
// and the limit, pipes refused before they are read, gzip bombs stopped, terminal output defused, run folders locked,
// other writers' temporary files left alone, trajectory frames not hoarded. Each file here is crafted by the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { CHECKPOINT_FORMAT, readCheckpointMeta, writeFileAtomic } from '../../sidecar/checkpoint/checkpoint.ts';
import { encodeSafetensors, readHeader, SafetensorsError } from '../../sidecar/checkpoint/safetensors.ts';
import { inspectText, terminalJson, terminalSafe } from '../../sidecar/cliTerminal.ts';
import { parseIdxImages } from '../../sidecar/data/idx.ts';
import { openDataset } from '../../sidecar/data/open.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { presetConfig, UNet } from '../../sidecar/ddpm/unet.ts';
import { LimitError, LIMITS } from '../../sidecar/limits.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { inspectCheckpoint, lossSummary } from '../../sidecar/jobs/inspect.ts';
import { acquireRunLock, removeDeadWritersTempFiles, RUN_LOCK } from '../../sidecar/jobs/runFolder.ts';
import { sampleImages } from '../../sidecar/jobs/sample.ts';
import { InterpolateParamsSchema, SampleParamsSchema } from '../../sidecar/protocol.ts';
import { parseParams } from '../../sidecar/validation.ts';
import { repoRoot } from '../helpers/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-hardening-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A checkpoint of metadata only (no tensors): what readCheckpointMeta judges. */
function metaFile(name: string, patch: Record<string, unknown>): string {
  const meta = {
    format: CHECKPOINT_FORMAT,
    kind: 'weights',
    model: presetConfig('tiny'),
    schedule: { kind: 'linear', T: 1000, betaStart: 1e-4, betaEnd: 0.02 },
    step: 5,
    seed: 0,
    created: '2026-01-01T00:00:00.000Z',
    ...patch,
  };
  const file = path.join(tmp, name);
  fs.writeFileSync(
    file,
    Buffer.concat(encodeSafetensors([], { format: CHECKPOINT_FORMAT, ddpm: JSON.stringify(meta) })),
  );
  return file;
}

const metaOf = (file: string) => readCheckpointMeta(readHeader(file));

test('a checkpoint whose metadata exceeds a limit is refused when opened, naming the value and the limit', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { schedule: { kind: 'linear', T: 1e9, betaStart: 1e-4, betaEnd: 0.02 } },
      /schedule\.T is 1,000,000,000, over the limit of 10,000/,
    ],
    [{ model: { ...presetConfig('tiny'), imageSize: 65536 } }, /model\.imageSize is 65,536, over the limit of 1,024/],
    [{ model: { ...presetConfig('tiny'), ch: 1e6 } }, /model\.ch is 1,000,000, over the limit of 2,048/],
    [
      { model: { ...presetConfig('tiny'), chMult: new Array(40).fill(1) } },
      /levels \(model\.chMult\) is 40, over the limit of 10/,
    ],
    [{ model: { ...presetConfig('tiny'), numResBlocks: 500 } }, /model\.numResBlocks is 500, over the limit of 32/],
    [
      { lossHistory: { steps: new Array(100_001).fill(1), loss: new Array(100_001).fill(0.5) } },
      /loss history length is 100,001, over the limit of 100,000/,
    ],
    [{ lossHistory: { steps: [1, 2], loss: [0.5] } }, /lossHistory has 2 steps but 1 losses/],
    [{ lossHistory: { steps: [1], loss: ['x'] } }, /not numbers/],
    [{ schedule: { kind: 'weird', T: 10 } }, /schedule\.kind "weird" is unknown/],
    [{ step: 'many' }, /step must be an integer/],
    [{ preset: { a: 1 } }, /preset is not a string/],
  ];
  for (const [patch, message] of cases) {
    const file = metaFile('bad.safetensors', patch);
    assert.throws(
      () => metaOf(file),
      (e: Error) => {
        assert.ok(e instanceof SafetensorsError, String(e));
        assert.match(e.message, message);
        assert.equal(classifyError(e), 'bad-input');
        return true;
      },
    );
  }
  // Within the limits, it opens.
  assert.equal(metaOf(metaFile('ok.safetensors', {}))?.schedule.T, 1000);
});

test('a header of more tensors than the limit is refused before any is listed (the inspector is not flooded)', () => {
  const header: Record<string, unknown> = {};
  for (let i = 0; i <= LIMITS.tensors; i++) header[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(tmp, 'many.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json]));
  assert.throws(() => readHeader(file), /holds 20,001 tensors, over the limit of 20,000/);
  assert.throws(() => inspectCheckpoint(file), /over the limit of 20,000/);
});

test('a tensor of more dimensions than the limit is refused', () => {
  const json = Buffer.from(JSON.stringify({ t: { dtype: 'F32', shape: new Array(9).fill(1), data_offsets: [0, 4] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(tmp, 'rank.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(4)]));
  assert.throws(() => readHeader(file), /has 9 dimensions, over the limit of 8/);
});

/** Runs `code` (CommonJS, requiring the sidecar through tsx) in a child with a timeout: a hang fails, not blocks. */
function inChild(code: string, timeoutMs = 20_000): { out: string; timedOut: boolean } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { out: `${r.stdout}${r.stderr}`, timedOut: r.error !== undefined || r.signal !== null };
}

test('a named pipe called x.safetensors (or a dataset file, or an image) is refused at once, not waited on', (t) => {
  if (process.platform === 'win32') return t.skip('no mkfifo on Windows');
  const fifo = path.join(tmp, 'x.safetensors');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const idxFifo = path.join(tmp, 'train-images-idx3-ubyte');
  assert.equal(spawnSync('mkfifo', [idxFifo]).status, 0);
  const r = inChild(`
    const { readHeader } = require('./sidecar/checkpoint/safetensors.ts');
    const { openDataset } = require('./sidecar/data/open.ts');
    const { loadImage } = require('./sidecar/image/png.ts');
    const { classifyError } = require('./sidecar/jobs/errors.ts');
    (async () => {
      const out = [];
      const attempt = async (f) => {
        try { await f(); out.push('read'); } catch (e) { out.push(classifyError(e) + ': ' + e.message); }
      };
      await attempt(() => readHeader(${JSON.stringify(fifo)}));
      await attempt(() => openDataset(${JSON.stringify(`idx:${idxFifo}`)}, { imageSize: 28, channels: 1 }));
      await attempt(() => loadImage(${JSON.stringify(fifo)}, 28, 1));
      console.log(JSON.stringify(out));
    })();
  `);
  assert.equal(r.timedOut, false, `the reader hung on a named pipe: ${r.out}`);
  const last = r.out.trim().split('\n').pop()!;
  assert.match(last, /^\[/, r.out);
  const lines = JSON.parse(last) as string[];
  assert.equal(lines.length, 3);
  for (const l of lines) assert.match(l, /^bad-input: .* is a named pipe, not a regular file/);
});

test('a gzip bomb is stopped at the inflation limit with a clear error', () => {
  // 64 MB of zeros behind a valid IDX header: it compresses to ~64 KB. The limit is lowered for the test.
  const n = 64 * 1024;
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(n, 4);
  header.writeUInt32BE(32, 8);
  header.writeUInt32BE(32, 12);
  const gz = zlib.gzipSync(Buffer.concat([header, Buffer.alloc(n * 32 * 32)]));
  assert.ok(gz.length < 200_000);
  assert.throws(
    () => parseIdxImages(gz, 'bomb.gz', 8 * 1024 * 1024),
    /bomb\.gz: the decompressed size its header announces \(67,108,880 bytes\) is over the limit of 8,388,608 bytes/,
  );
  // A bomb that announces 10 images and inflates to 64 MB: stopped at the announced size, not at the limit.
  const liar = Buffer.from(header);
  liar.writeUInt32BE(10, 4);
  const gzLiar = zlib.gzipSync(Buffer.concat([liar, Buffer.alloc(n * 32 * 32)]));
  assert.throws(
    () => parseIdxImages(gzLiar, 'liar.gz', 128 * 1024 * 1024),
    /liar\.gz: the decompressed data is longer than the 10,256 bytes its header announces/,
  );
  // Without an IDX header, the limit itself stops it.
  assert.throws(
    () => parseIdxImages(zlib.gzipSync(Buffer.alloc(n * 32 * 32, 1)), 'noise.gz', 8 * 1024 * 1024),
    /noise\.gz: the decompressed data is over the limit of 8,388,608 bytes/,
  );
  // The same file within the limit parses.
  assert.equal(parseIdxImages(gz, 'bomb.gz', 128 * 1024 * 1024).n, n);
  assert.equal(LIMITS.inflatedBytes, 2 * 1024 ** 3);
});

test('a dataset file larger than the limit is refused before it is read', async () => {
  // A sparse file: no disk is used for the 3 GB.
  const file = path.join(tmp, 'huge', 'train-images-idx3-ubyte');
  fs.mkdirSync(path.dirname(file));
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, 3 * 1024 ** 3);
  fs.closeSync(fd);
  await assert.rejects(openDataset(`idx:${file}`, { imageSize: 28, channels: 1 }), /over the limit of 2,147,483,648/);
});

test('request schemas take their bounds from LIMITS and name the field and the limit', () => {
  assert.throws(
    () => parseParams(SampleParamsSchema, { checkpoint: 'x', n: LIMITS.n + 1 }),
    /field 'n' must be an integer in 1\.\.1024/,
  );
  assert.throws(
    () => parseParams(SampleParamsSchema, { checkpoint: 'x', frames: 1001 }),
    /field 'frames' must be an integer in 0\.\.1000/,
  );
  assert.throws(
    () => parseParams(SampleParamsSchema, { checkpoint: 'x'.repeat(LIMITS.stringChars + 1) }),
    /field 'checkpoint' must be at most 4096 characters long/,
  );
  assert.throws(
    () => parseParams(InterpolateParamsSchema, { checkpoint: 'c', imageA: 'a', imageB: 'b', t: LIMITS.T }),
    /field 't' must be an integer in 0\.\.9999/,
  );
  assert.equal(new LimitError('x', 11, 10).message, 'x is 11, over the limit of 10');
  // Found by bench/faults/rpcFuzz.ts: a NUL in a path reached node's fs as an internal error; more DDIM steps than the
  // checkpoint's T was an internal error too.
  assert.throws(
    () => parseParams(SampleParamsSchema, { checkpoint: 'a\0b' }),
    /field 'checkpoint' must not contain a NUL character/,
  );
  assert.equal(classifyError(new Error('DDIM steps must be an integer in 1..20, got 50')), 'bad-input');
  // The full runs of rpcFuzz and fileFuzz found three more plain errors that are bad input.
  assert.equal(classifyError(new Error('/dev/zero: no held-out set beside it (expected /dev/zero)')), 'bad-input');
  assert.equal(
    classifyError(new Error('x/train-labels-idx1-ubyte: 64 labels for 1 images in x/train-images')),
    'bad-input',
  );
});

test('metadata strings reach the terminal with escape sequences defused', () => {
  const osc52 = '\x1b]52;c;cm0gLXJmIH4=\x07';
  const file = metaFile('escape.safetensors', {
    preset: `tiny${osc52}`,
    backend: '\x1b[2J\x1b[H',
    data: { source: 'mnist\u202e', size: 3 },
    lossHistory: { steps: [1, 2, 3], loss: [0.9, null, 0.4] },
  });
  const r = inspectCheckpoint(file);
  const text = inspectText(r, lossSummary(r.lossHistory));
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(text, /[\x1b\x07\u202e]/);
  assert.match(text, /tiny\\x1b\]52;c;cm0gLXJmIH4=\\x07/);
  assert.match(text, /mnist\\u202e/);
  assert.match(text, /loss: 3 points, step 1 → 3: 0\.9000 → 0\.4000 \(min 0\.4000\)/);
  assert.equal(terminalSafe('a\tb\nc\rd\u009be'), 'a\tb\nc\\x0dd\\x9be');
  const json = terminalJson({ s: '\x1b\u009b\u202e' });
  assert.equal(json, '{"s":"\\u001b\\u009b\\u202e"}');
  assert.deepEqual(JSON.parse(json), { s: '\x1b\u009b\u202e' });
});

test('inspect summarises long and malformed loss histories without overflowing or crashing', () => {
  const long = {
    steps: Array.from({ length: 100_000 }, (_, i) => i),
    loss: Array.from({ length: 100_000 }, (_, i) => 1 / (i + 1)),
  };
  assert.deepEqual(lossSummary(long), {
    points: 100_000,
    firstStep: 0,
    lastStep: 99_999,
    first: 1,
    last: 1e-5,
    min: 1e-5,
  });
  const nan = { steps: [1, 2], loss: [null, null] } as unknown as { steps: number[]; loss: number[] };
  assert.deepEqual(lossSummary(nan), { points: 2, firstStep: 1, lastStep: 2, first: null, last: null, min: null });
  const text = inspectText(inspectCheckpoint(metaFile('nan.safetensors', { lossHistory: nan })), lossSummary(nan));
  assert.match(text, /NaN → NaN \(min NaN\)/);
});

test('a run folder takes one job at a time; a killed holder’s lock is taken over', async () => {
  const dir = path.join(tmp, 'run');
  fs.mkdirSync(dir);
  const release = acquireRunLock(dir);
  assert.throws(() => acquireRunLock(dir), /the run folder .* is in use by another training job of this process/);
  release();
  assert.equal(fs.existsSync(path.join(dir, RUN_LOCK)), false);
  // Held by a live process: refused, naming it.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  fs.writeFileSync(path.join(dir, RUN_LOCK), JSON.stringify({ pid: child.pid, host: os.hostname(), started: 'then' }));
  assert.throws(() => acquireRunLock(dir), new RegExp(`in use by process ${child.pid} on`));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // Its holder was killed: the lock is stale and taken over.
  const again = acquireRunLock(dir);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, RUN_LOCK), 'utf8')).pid, process.pid);
  again();
});

test('temporary files: own ones are named with pid and random part; only those of dead writers are removed', async () => {
  const dir = path.join(tmp, 'temps');
  fs.mkdirSync(dir);
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const live = `.latest.safetensors.${child.pid}.0123456789ab.tmp`;
  const gone = `.latest.safetensors.${dead.stdout}.0123456789ab.tmp`;
  const foreign = '.notes.tmp';
  for (const f of [live, gone, foreign]) fs.writeFileSync(path.join(dir, f), 'x');
  assert.deepEqual(removeDeadWritersTempFiles(dir), [gone]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [live, foreign].sort());
  child.kill('SIGKILL');
  // An atomic write leaves only its target, and its temporary name had this process's id.
  writeFileAtomic(path.join(dir, 'a.bin'), [Buffer.from('abc')]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [live, foreign, 'a.bin'].sort());
});

test('sampling streams trajectory frames without keeping them unless asked (keepFrames)', async () => {
  const model = UNet.create(presetConfig('tiny'), new Rng(3));
  const opts = { n: 2, sampler: 'ddim' as const, steps: 3, seed: 1, frames: 3, workers: 1 as const };
  let streamed = 0;
  const before = tf.memory().numTensors;
  const r = await sampleImages(model.params, model.config, { T: 50 }, { ...opts, onFrame: () => void streamed++ });
  assert.equal(streamed, 3);
  assert.equal(r.frames.length, 0);
  const kept = await sampleImages(model.params, model.config, { T: 50 }, { ...opts, keepFrames: true });
  assert.equal(kept.frames.length, 3);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(
    sampleImages(model.params, model.config, { T: 50 }, { ...opts, n: 1024, frames: 1000, keepFrames: true }),
    /the trajectory strips would hold .* MB of frames \(1024 images × 1000 frames\), over the limit of 1024 MB/,
  );
  model.dispose();
});

test('the stdio framing guard passes whole messages through in any chunking and stops at a bad header', async () => {
  const { FramingGuard } = await import('../../sidecar/framing.ts');
  const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const good = frame('{"jsonrpc":"2.0","id":1,"method":"a"}') + frame('{"ü":"\r\n\r\n"}') + frame('');
  const run = async (input: string, cuts: number[], max?: number) => {
    const errors: string[] = [];
    const g = new FramingGuard((why) => errors.push(why), max);
    const out: Buffer[] = [];
    g.on('data', (c: Buffer) => out.push(c));
    const bytes = Buffer.from(input);
    let at = 0;
    for (const c of [...cuts, bytes.length]) {
      g.write(bytes.subarray(at, c));
      at = c;
    }
    g.end();
    await new Promise((r) => g.once('finish', r));
    return { out: Buffer.concat(out).toString(), errors };
  };
  const rng = new Rng(5);
  for (let i = 0; i < 50; i++) {
    const cuts = [...new Set(Array.from({ length: 6 }, () => Math.floor(rng.uniform() * good.length)))].sort(
      (a, b) => a - b,
    );
    const r = await run(good, cuts);
    assert.deepEqual(r.errors, []);
    assert.equal(r.out, good);
  }
  const bad = await run(`${good}Content-Length: abc\r\n\r\n{}`, [good.length + 5]);
  assert.deepEqual(bad.errors, [
    'the JSON-RPC stream on stdin is corrupt: a Content-Length that is not a number ("abc")',
  ]);
  assert.equal(bad.out, good);
  const none = await run('Content-Type: x\r\n\r\n{}', []);
  assert.match(none.errors[0], /a message without a Content-Length header/);
  const huge = await run('Content-Length: 1000000000000\r\n\r\n', []);
  assert.match(huge.errors[0], /a Content-Length of 1,000,000,000,000 bytes, over the limit of 268,435,456/);
});

test('a checkpoint whose tensors do not match its own model config is bad input, named, not an internal error', async () => {
  const { saveTinyCheckpoint } = await import('../helpers/tinyCheckpoint.ts');
  const { loadWeights } = await import('../../sidecar/jobs/weights.ts');
  const file = path.join(tmp, 'mismatch.safetensors');
  saveTinyCheckpoint(file, 20);
  // The same file with numClasses = 3 in its config: the class embedding is missing (found by bench/faults/fileFuzz.ts).
  const h = readHeader(file);
  const meta = JSON.parse(h.metadata.ddpm);
  meta.model.numClasses = 3;
  const bytes = fs.readFileSync(file);
  const header = JSON.parse(bytes.subarray(8, 8 + h.headerSize).toString());
  header.__metadata__.ddpm = JSON.stringify(meta);
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, bytes.subarray(8 + h.headerSize)]));
  assert.throws(
    () => loadWeights(file, true),
    (e: Error) =>
      /its weights do not match its model config: 'class_embed\.weight' is missing/.test(e.message) &&
      classifyError(e) === 'bad-input',
  );
});

test('a file where the run folder should be is bad input, named (EEXIST from mkdir was an internal error)', async () => {
  const { runTrainJob } = await import('../../sidecar/jobs/train.ts');
  const file = path.join(tmp, 'not-a-folder');
  fs.writeFileSync(file, 'x');
  await assert.rejects(
    runTrainJob({ data: 'mnist', preset: 'tiny', steps: 1, batch: 1, out: file }),
    (e: Error) =>
      /not-a-folder is a file, not a folder: the run folder \(out\) must be a folder/.test(e.message) &&
      classifyError(e) === 'bad-input',
  );
});
