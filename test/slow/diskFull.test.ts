// A full disk during an atomic write (issue 16): the error says so, the previous file is intact, and the temporary
// file is gone. Needs a small filesystem: a tmpfs (root); skipped where none can be mounted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../sidecar/checkpoint/checkpoint.ts';

test('ENOSPC while writing: a clear error, the previous file byte for byte, no temporary file left', (t) => {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-enospc-'));
  if (process.platform !== 'linux' || spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status !== 0) {
    fs.rmSync(mnt, { recursive: true, force: true });
    return t.skip('cannot mount a small tmpfs here (needs root on Linux)');
  }
  try {
    const file = path.join(mnt, 'latest.safetensors');
    const previous = Buffer.alloc(900 * 1024, 7);
    writeFileAtomic(file, [previous]);
    // 1.5 MB more does not fit beside the 0.9 MB already there.
    assert.throws(
      () => writeFileAtomic(file, [Buffer.alloc(1536 * 1024, 9)]),
      /no space left on the disk to write .*latest\.safetensors \(1\.5 MB\): nothing was replaced, the previous latest\.safetensors is intact/,
    );
    assert.ok(fs.readFileSync(file).equals(previous));
    assert.deepEqual(fs.readdirSync(mnt), ['latest.safetensors']);
  } finally {
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});
