// Command arguments from code (issue 16): paths to write must lie in the workspace or the extension's storage (links
// resolved), and test-only options are refused outside the tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checkTestOnly,
  checkWritePaths,
  CommandArgError,
  isInside,
  type ArgPolicy,
} from '../../extension/commandArgs.ts';

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-args-')));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ws = path.join(tmp, 'workspace');
const storage = path.join(tmp, 'storage');
const outside = path.join(tmp, 'elsewhere');
for (const d of [ws, storage, outside]) fs.mkdirSync(d);
const policy: ArgPolicy = { writableRoots: () => [ws, storage], testHooks: false };

test('a saveTo or out inside a workspace folder or the storage is accepted, also where it does not exist yet', () => {
  for (const p of [path.join(ws, 'grid.png'), path.join(ws, 'runs', 'new', 'deep'), path.join(storage, 'x.png'), ws]) {
    const opts = { saveTo: p, n: 4 };
    assert.equal(checkWritePaths('ddpm.sample', opts, ['saveTo'], policy), opts);
  }
  assert.deepEqual(checkWritePaths('ddpm.sample', { n: 4 } as { n: number; saveTo?: string }, ['saveTo'], policy), {
    n: 4,
  });
});

test('anywhere else is refused with a message naming the command, the option and the rule', () => {
  const cases: [unknown, RegExp][] = [
    [
      path.join(outside, 'grid.png'),
      /ddpm\.sample: 'saveTo' \(.*elsewhere.grid\.png\) is outside the workspace folders and the extension's storage/,
    ],
    [path.join(ws, '..', 'elsewhere', 'x.png'), /is outside the workspace folders/],
    [`${ws}-evil/x.png`, /is outside the workspace folders/],
    ['relative/grid.png', /must be an absolute path/],
    [42, /must be a file path/],
    [`${ws}/a\0b`, /must be a file path/],
  ];
  for (const [value, message] of cases)
    assert.throws(
      () => checkWritePaths('ddpm.sample', { saveTo: value }, ['saveTo'], policy),
      (e: Error) => e instanceof CommandArgError && message.test(e.message),
    );
});

test('a symbolic link inside the workspace that leads outside is followed, and refused', (t) => {
  const link = path.join(ws, 'link');
  try {
    fs.symlinkSync(outside, link, 'dir');
  } catch {
    return t.skip('cannot create symbolic links here');
  }
  assert.equal(isInside(path.join(link, 'grid.png'), ws), false);
  assert.throws(
    () => checkWritePaths('ddpm.train', { out: path.join(link, 'run') }, ['out'], policy),
    /'out' .* is outside/,
  );
});

test('test-only options are refused outside the tests and accepted in them', () => {
  const opts = { variant: 'cpu', packageSpec: '/tmp/x.tgz', env: { NODE_OPTIONS: '--require /tmp/evil.js' } };
  assert.throws(
    () => checkTestOnly('ddpm.installCudaBackend', opts, ['packageSpec', 'env'], policy),
    /ddpm\.installCudaBackend: 'packageSpec' and 'env' are accepted only in the extension's own tests/,
  );
  assert.equal(
    checkTestOnly('ddpm.installCudaBackend', { variant: 'cpu' } as typeof opts, ['packageSpec', 'env'], policy).variant,
    'cpu',
  );
  assert.equal(
    checkTestOnly('ddpm.installCudaBackend', opts, ['packageSpec', 'env'], { ...policy, testHooks: true }),
    opts,
  );
});
