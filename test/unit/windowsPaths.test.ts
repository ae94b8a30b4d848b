// What differs on Windows (and macOS), tested here on Linux with the platform as an argument: path identity without
// case on NTFS and APFS, drive letters in data sources, npm's JavaScript entry beside node.exe, CRLF in the training
// logs, and the child processes the CLI and the packager start without a shell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { samePath as sidecarSamePath } from '../../sidecar/samePath.ts';
import { samePath as extensionSamePath } from '../../extension/samePath.ts';
import { openDataset } from '../../sidecar/data/open.ts';
import { npmCliCandidates } from '../../scripts/packaging/package.ts';
import { repoRoot } from '../helpers/paths.ts';

for (const [side, samePath] of [
  ['sidecar', sidecarSamePath],
  ['extension', extensionSamePath],
] as const) {
  test(`${side}/samePath: one file on Windows and macOS whatever the case; distinct on Linux`, () => {
    assert.equal(samePath('C:\\Runs\\MNIST\\latest.safetensors', 'c:\\runs\\mnist\\LATEST.safetensors', 'win32'), true);
    assert.equal(samePath('C:\\runs\\a\\..\\b\\', 'C:/runs/b', 'win32'), true, 'separators, .. and a trailing slash');
    assert.equal(samePath('C:\\runs\\b', 'D:\\runs\\b', 'win32'), false, 'another drive');
    assert.equal(samePath('/Users/ann/Runs/a', '/users/ann/runs/A', 'darwin'), true);
    assert.equal(samePath('/home/ann/Runs/a', '/home/ann/runs/a', 'linux'), false);
    assert.equal(samePath('/home/ann/runs/./a/', '/home/ann/runs/a', 'linux'), true);
  });
}

test('a data source keeps a Windows path whole (only the first colon ends the kind)', async () => {
  await assert.rejects(openDataset('folder:C:\\no\\such\\folder', { imageSize: 28, channels: 1 }), (e: Error) => {
    assert.match(e.message, /^C:\\no\\such\\folder: no such folder$/);
    return true;
  });
  await assert.rejects(
    openDataset('idx:D:\\data\\train-images-idx3-ubyte.gz', { imageSize: 28, channels: 1 }),
    (e: Error) => {
      assert.match(e.message, /^D:\\data\\train-images-idx3-ubyte\.gz: no such file$/);
      return true;
    },
  );
});

test("npm's JavaScript entry: beside node.exe on Windows, in lib/ beside bin/ on POSIX", () => {
  assert.deepEqual(npmCliCandidates('C:\\Program Files\\nodejs\\node.exe', 'win32'), [
    'C:\\Program Files\\nodejs\\node_modules\\npm\\bin\\npm-cli.js',
  ]);
  assert.deepEqual(npmCliCandidates('/usr/local/bin/node', 'linux'), [
    '/usr/local/lib/node_modules/npm/bin/npm-cli.js',
    '/usr/local/bin/node_modules/npm/bin/npm-cli.js',
  ]);
  // This machine's own npm is found the same way.
  if (process.platform !== 'win32')
    assert.ok(
      npmCliCandidates(process.execPath).some((c) => fs.existsSync(c)) || process.env.npm_execpath,
      `no npm-cli.js beside ${process.execPath}`,
    );
});

test('training logs are read line by line whatever the line ends (CRLF from a Windows editor)', () => {
  const src = fs.readFileSync(path.join(repoRoot, 'sidecar', 'jobs', 'train.ts'), 'utf8');
  // The resume path rereads loss.csv and eval.csv: no split on '\n' alone.
  assert.doesNotMatch(src, /\.split\('\\n'\)/);
  assert.equal((src.match(/\.split\(\/\\r\?\\n\/\)/g) ?? []).length, 2);
});

test('child processes start without a shell: node itself with an argument array', () => {
  for (const file of ['sidecar/cliNativeLog.ts', 'scripts/packaging/package.ts', 'extension/sidecarClient.ts']) {
    const src = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    assert.doesNotMatch(src, /shell:\s*true|execSync\(|\bexec\(/, `${file} starts a shell`);
    assert.match(src, /(spawn|execFileSync)\(process\.execPath, /, `${file}: does not start node itself`);
  }
});
