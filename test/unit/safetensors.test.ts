// safetensors: round trip (F32, F16), foreign files, and bounds-checked reading under random corruption.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  encodeSafetensors,
  readHeader,
  readTensorF32,
  SafetensorsError,
  MAX_HEADER_BYTES,
} from '../../sidecar/checkpoint/safetensors.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../sidecar/checkpoint/float16.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-st-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeFile(name: string, chunks: Buffer[] | Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, Array.isArray(chunks) ? Buffer.concat(chunks) : chunks);
  return f;
}

test('round trip: names, shapes, metadata and values (F32 exact, F16 to half precision)', () => {
  const a = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 3);
  const b = Float32Array.from([1, -2.5, 65504, 1e-5, 0, -0]);
  const file = writeFile(
    'rt.safetensors',
    encodeSafetensors(
      [
        { name: 'down.0.res.0.conv1.weight', shape: [2, 3, 4], data: a },
        { name: 'bias', shape: [6], data: b, dtype: 'F16' },
      ],
      { format: 'test', note: 'ünïcode' },
    ),
  );
  const h = readHeader(file);
  assert.equal(h.metadata.format, 'test');
  assert.equal(h.metadata.note, 'ünïcode');
  assert.deepEqual(
    h.tensors.map((t) => [t.name, t.dtype, t.shape]),
    [
      ['down.0.res.0.conv1.weight', 'F32', [2, 3, 4]],
      ['bias', 'F16', [6]],
    ],
  );
  assert.equal((8 + h.headerSize) % 8, 0, 'data section is 8-byte aligned');
  assert.deepEqual(Array.from(readTensorF32(h, h.tensors[0])), Array.from(a));
  const back = readTensorF32(h, h.tensors[1]);
  assert.deepEqual(Array.from(back.slice(0, 3)), [1, -2.5, 65504]);
  assert.ok(Math.abs(back[3] - 1e-5) < 1e-7);
});

test('float16 conversion rounds to nearest even and handles subnormals, overflow and NaN', () => {
  assert.equal(float32ToFloat16(1), 0x3c00);
  assert.equal(float32ToFloat16(-2), 0xc000);
  assert.equal(float32ToFloat16(65504), 0x7bff);
  assert.equal(float32ToFloat16(70000), 0x7c00);
  assert.equal(float32ToFloat16(2 ** -24), 0x0001);
  assert.equal(float32ToFloat16(1 + 2 ** -11), 0x3c00, 'tie rounds to even');
  assert.equal(float32ToFloat16(1 + 3 * 2 ** -11), 0x3c02, 'tie rounds to even (up)');
  assert.ok(Number.isNaN(float16ToFloat32(float32ToFloat16(NaN))));
  for (let h = 0; h < 0x7c00; h += 7) assert.equal(float32ToFloat16(float16ToFloat32(h)), h);
});

test('a foreign safetensors file (PyTorch-style names, other dtypes) is read and listed', () => {
  const header = JSON.stringify({
    __metadata__: { format: 'pt' },
    'encoder.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
    'encoder.steps': { dtype: 'I64', shape: [1], data_offsets: [16, 24] },
  });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const file = writeFile('foreign.safetensors', [len, Buffer.from(header), Buffer.alloc(24)]);
  const h = readHeader(file);
  assert.deepEqual(
    h.tensors.map((t) => t.name),
    ['encoder.weight', 'encoder.steps'],
  );
  assert.throws(() => readTensorF32(h, h.tensors[1]), /I64; only floating-point tensors/);
});

test('malformed files give clear errors', () => {
  const ok = Buffer.concat(encodeSafetensors([{ name: 'w', shape: [4], data: new Float32Array(4) }], {}));
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /shorter than the 8-byte header length/],
    ['truncated', ok.subarray(0, ok.length - 3), /outside the .*data section/],
    [
      'huge header length',
      Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), ok.subarray(8)]),
      /longer than the rest of the file/,
    ],
    ['text file', Buffer.from('hello, this is not a checkpoint at all\n'), /header length|not JSON/],
    ['png', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), /longer than the rest of the file/],
  ];
  for (const [name, buf, re] of cases) {
    const f = writeFile(`${name}.safetensors`, buf);
    assert.throws(
      () => readHeader(f),
      (e: Error) => e instanceof SafetensorsError && re.test(e.message),
      name,
    );
  }
  const bad = (header: object) => {
    const j = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(j.length));
    return writeFile('bad.safetensors', [len, j, Buffer.alloc(16)]);
  };
  assert.throws(
    () => readHeader(bad({ w: { dtype: 'F99', shape: [4], data_offsets: [0, 16] } })),
    /unknown dtype "F99"/,
  );
  assert.throws(
    () => readHeader(bad({ w: { dtype: 'F32', shape: [5], data_offsets: [0, 16] } })),
    /is 16 bytes but F32\[5\] needs 20/,
  );
  assert.throws(
    () =>
      readHeader(
        bad({
          a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
          b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
        }),
      ),
    /overlap/,
  );
  assert.throws(() => readHeader(bad({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 16] } })), /invalid shape/);
  assert.throws(() => readHeader(bad([1, 2])), /not a JSON object/);
  assert.throws(() => readHeader(path.join(tmp, 'missing.safetensors')), /no such file/);
  assert.throws(() => readHeader(tmp), /is a folder/);
});

test('fuzz: 300 random corruptions of a valid file never crash and never allocate more than 100 MB', () => {
  const rng = new Rng(2024);
  const tensors = Array.from({ length: 6 }, (_, i) => ({
    name: `layer.${i}.weight`,
    shape: [3, 5],
    data: Float32Array.from({ length: 15 }, (_, k) => k * i),
    dtype: (i % 2 ? 'F16' : 'F32') as 'F16' | 'F32',
  }));
  const valid = Buffer.concat(encodeSafetensors(tensors, { format: 'ddpm-studio/1', ddpm: '{"x":1}' }));
  const headerLen = Number(valid.readBigUInt64LE(0));
  const baseline = process.memoryUsage().rss;
  let rejected = 0;
  let accepted = 0;
  for (let i = 0; i < 300; i++) {
    const buf = Buffer.from(valid);
    let mutated: Buffer = buf;
    switch (rng.int(6)) {
      case 0: // truncate anywhere
        mutated = buf.subarray(0, rng.int(buf.length));
        break;
      case 1: // random bytes anywhere in the header
        for (let k = 0; k < 1 + rng.int(8); k++) buf[8 + rng.int(headerLen)] = rng.int(256);
        break;
      case 2: // a random header length (up to 2^64 − 1)
        buf.writeUInt32LE(rng.nextU32(), 0);
        buf.writeUInt32LE(rng.int(4) === 0 ? rng.nextU32() : 0, 4);
        break;
      case 3: {
        // digits in the header replaced: offsets and shapes point elsewhere
        const text = buf
          .subarray(8, 8 + headerLen)
          .toString('latin1')
          .replace(/\d+/g, (d) => (rng.int(3) === 0 ? String(rng.nextU32() * (rng.int(2) ? 65536 : 1)) : d));
        const j = Buffer.from(text, 'latin1');
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(j.length));
        mutated = Buffer.concat([len, j, buf.subarray(8 + headerLen)]);
        break;
      }
      case 4: // random garbage of random length
        mutated = Buffer.from(Array.from({ length: rng.int(4096) }, () => rng.int(256)));
        break;
      default: // data section damaged or cut: the header may still be fine
        mutated = buf.subarray(0, buf.length - 1 - rng.int(64));
    }
    const f = writeFile(`fuzz-${i % 10}.safetensors`, mutated);
    try {
      const h = readHeader(f);
      for (const t of h.tensors) readTensorF32(h, t);
      accepted++;
    } catch (e) {
      assert.ok(e instanceof Error, `case ${i}: threw a non-Error`);
      assert.ok(
        !/(Invalid array length|Array buffer allocation failed|RangeError)/.test(String(e)),
        `case ${i}: ${String(e)}`,
      );
      rejected++;
    }
    assert.ok(
      process.memoryUsage().rss - baseline < 100 * 2 ** 20,
      `case ${i}: memory grew by ${(process.memoryUsage().rss - baseline) / 2 ** 20} MB`,
    );
  }
  assert.equal(rejected + accepted, 300);
  assert.ok(rejected > 200, `only ${rejected} corruptions were detected`);
  assert.equal(MAX_HEADER_BYTES, 100 * 1024 * 1024);
});

test('BF16 tensors (as PyTorch writes them) load as float32', () => {
  const header = JSON.stringify({ w: { dtype: 'BF16', shape: [3], data_offsets: [0, 6] } });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const data = Buffer.alloc(6);
  data.writeUInt16LE(0x3f80, 0); // 1.0
  data.writeUInt16LE(0xc040, 2); // −3.0
  data.writeUInt16LE(0x3eab, 4); // ≈ 0.333984375
  const h = readHeader(writeFile('bf16.safetensors', [len, Buffer.from(header), data]));
  assert.deepEqual(Array.from(readTensorF32(h, h.tensors[0])), [1, -3, 0.333984375]);
});
