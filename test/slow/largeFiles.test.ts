// Files beyond what one read() returns (issue 16): a tensor over 2 GiB is read whole, in chunks (one readSync stops at
// ~2 GiB, which misreported it as truncated). The file is sparse: a few GB of address space, a few KB of disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readHeader, readTensorF32 } from '../../sidecar/checkpoint/safetensors.ts';

test('an F32 tensor of 2 GiB + 64 bytes is read in full, its values where they were written', () => {
  const n = 2 ** 29 + 16; // elements: 2 GiB + 64 bytes of data
  const json = Buffer.from(JSON.stringify({ big: { dtype: 'F32', shape: [n], data_offsets: [0, n * 4] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-large-'));
  const file = path.join(dir, 'big.safetensors');
  try {
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, Buffer.concat([len, json]));
    const start = 8 + json.length;
    fs.ftruncateSync(fd, start + n * 4);
    // Marks at the start, on both sides of the 2 GiB and 0x7ffff000 boundaries, and at the end.
    const marks = [0, 1, 0x7ffff000 / 4 - 1, 0x7ffff000 / 4, 2 ** 29 - 1, 2 ** 29, n - 1];
    const v = Buffer.alloc(4);
    marks.forEach((i, k) => {
      v.writeFloatLE(k + 1.5);
      fs.writeSync(fd, v, 0, 4, start + i * 4);
    });
    fs.closeSync(fd);
    const h = readHeader(file);
    const t = readTensorF32(h, h.tensors[0]);
    assert.equal(t.length, n);
    marks.forEach((i, k) => assert.equal(t[i], k + 1.5, `element ${i}`));
    assert.equal(t[12345], 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
