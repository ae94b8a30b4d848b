// A test file's shared sidecar (kept out of sidecarClient.ts, which bench scripts import without node:test).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startSidecar, type Sidecar } from './sidecarClient.ts';

/**
 * One sidecar for all the tests of a file, and a temporary folder (`prefix`…) for their files: the sidecar starts
 * in a before hook (one of the file's own before hooks, registered after this call, can write the files its tests
 * need); after the last test it is closed and the folder removed. `sc` stands for that sidecar once it has started.
 */
export function sidecarSuite(prefix: string): { tmp: string; sc: Sidecar } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let started: Sidecar | undefined;
  const live = () => {
    if (!started) throw new Error('the sidecar of this test file is not started yet (used outside a test?)');
    return started;
  };
  test.before(() => {
    started = startSidecar();
  });
  test.after(async () => {
    await started?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const sc: Sidecar = {
    get connection() {
      return live().connection;
    },
    get child() {
      return live().child;
    },
    stderr: () => live().stderr(),
    close: () => live().close(),
  };
  return { tmp, sc };
}
