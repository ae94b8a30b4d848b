// DDPM: Install CUDA Backend installs what extension/nativeLocks.json pins (issue 16): every package by name and
// version with its sha512 (from the npm registry or a configured mirror), the native packages at the tfjs version the
// sidecar is built with; npm is found through its JavaScript entry (started with node, no shell); the children's
// environment takes npm's settings only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import locks from '../../extension/nativeLocks.json';
import { childEnv, findNpmCli, NATIVE_PACKAGES, NATIVE_VERSION } from '../../extension/nativeBackendInstaller.ts';

type Lock = {
  package: { dependencies: Record<string, string> };
  lock: {
    lockfileVersion: number;
    packages: Record<string, { version?: string; integrity?: string; resolved?: string }>;
  };
};

test('each variant pins its package at NATIVE_VERSION, and every package of its lockfile has a sha512 from the registry', () => {
  for (const variant of ['cpu', 'cuda'] as const) {
    const { package: pkg, lock } = (locks as Record<string, Lock>)[variant];
    assert.deepEqual(pkg.dependencies, { [NATIVE_PACKAGES[variant]]: NATIVE_VERSION });
    assert.equal(lock.lockfileVersion, 3);
    const entries = Object.entries(lock.packages).filter(([k]) => k !== '');
    assert.ok(entries.length > 50, `${variant}: only ${entries.length} packages`);
    for (const [name, e] of entries) {
      assert.match(e.integrity ?? '', /^sha512-[A-Za-z0-9+/]+=*$/, `${variant}: ${name} has no sha512`);
      // Without `resolved`, npm fetches name@version from the configured registry (or mirror) and checks the sha512.
      if (e.resolved !== undefined)
        assert.match(e.resolved, /^https:\/\/registry\.npmjs\.org\//, `${variant}: ${name} from ${e.resolved}`);
    }
    assert.equal(lock.packages[`node_modules/${NATIVE_PACKAGES[variant]}`].version, NATIVE_VERSION);
    assert.equal(lock.packages['node_modules/@tensorflow/tfjs'].version, NATIVE_VERSION);
  }
});

test('npm is found as its npm-cli.js beside the npm on PATH, in the POSIX and the Windows layout', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-npmcli-'));
  try {
    // POSIX: <prefix>/bin/npm → ../lib/node_modules/npm/bin/npm-cli.js
    const cli = path.join(tmp, 'posix', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
    fs.mkdirSync(path.dirname(cli), { recursive: true });
    fs.writeFileSync(cli, '');
    fs.mkdirSync(path.join(tmp, 'posix', 'bin'));
    fs.symlinkSync(cli, path.join(tmp, 'posix', 'bin', 'npm'));
    assert.equal(findNpmCli({ PATH: `/nonexistent${path.delimiter}${path.join(tmp, 'posix', 'bin')}` }, 'linux'), cli);
    // Windows: <dir>/npm.cmd beside <dir>/node_modules/npm/bin/npm-cli.js (npm.cmd itself is never run).
    const win = path.join(tmp, 'win');
    const winCli = path.join(win, 'node_modules', 'npm', 'bin', 'npm-cli.js');
    fs.mkdirSync(path.dirname(winCli), { recursive: true });
    fs.writeFileSync(winCli, '');
    fs.writeFileSync(path.join(win, 'npm.cmd'), '@echo off');
    assert.equal(findNpmCli({ Path: win }, 'win32'), winCli);
    assert.equal(findNpmCli({ PATH: path.join(tmp, 'nothing') }, 'linux'), null);
    // A version manager's shim (an executable npm, no npm-cli.js near it) is run directly; a lone npm.cmd never is.
    const shimDir = path.join(tmp, 'shim');
    fs.mkdirSync(shimDir);
    fs.writeFileSync(path.join(shimDir, 'npm'), '#!/bin/sh\n');
    assert.equal(findNpmCli({ PATH: shimDir }, 'linux'), path.join(shimDir, 'npm'));
    const cmdOnly = path.join(tmp, 'cmd-only');
    fs.mkdirSync(cmdOnly);
    fs.writeFileSync(path.join(cmdOnly, 'npm.cmd'), '@echo off');
    assert.equal(findNpmCli({ Path: cmdOnly }, 'win32'), null);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("the children's environment: npm settings and the libtensorflow mirror only, never NODE_OPTIONS", () => {
  const env = childEnv({ npm_config_registry: 'http://r/', TFJS_NODE_CDN_STORAGE: 'http://m/' });
  assert.equal(env.npm_config_registry, 'http://r/');
  assert.equal(env.TFJS_NODE_CDN_STORAGE, 'http://m/');
  assert.throws(() => childEnv({ NODE_OPTIONS: '--require x' }), /not NODE_OPTIONS/);
  assert.throws(() => childEnv({ PATH: '/evil', LD_PRELOAD: 'x.so' }), /not PATH, LD_PRELOAD/);
  const before = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = '--require /tmp/x.js';
  try {
    assert.equal(childEnv().NODE_OPTIONS, undefined);
  } finally {
    if (before === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = before;
  }
});
