// `npm run test:electron`: @vscode/test-cli runs the extension-host suite in desktop VS Code. VS Code cannot be
// downloaded here, so this checks what can be checked without it: test-cli itself loads .vscode-test.mjs and resolves
// the same suite files, in the order test/e2e/suite/index.js runs them (code-server on CI), with mocha's tdd
// interface that they are written in, the workspace and profile that electron-setup.mjs prepares, and a runner that
// the extension host can call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/paths.ts';

const suiteDir = path.join(repoRoot, 'test', 'e2e', 'suite');
const suiteFiles = fs
  .readdirSync(suiteDir)
  .filter((f) => f.endsWith('.test.js'))
  .sort()
  .map((f) => path.join(suiteDir, f));

interface Resolved {
  config: { label: string; mocha: { ui: string; timeout: number }; launchArgs: string[]; workspaceFolder: string };
  extensionTestsPath: string;
  extensionDevelopmentPath: string[];
  env: { VSCODE_TEST_OPTIONS: string };
}

test('vscode-test --list-configuration: the suite files in name order, tdd, this extension, our workspace', () => {
  const cli = path.join(repoRoot, 'node_modules', '@vscode', 'test-cli', 'out', 'bin.mjs');
  const r = spawnSync(process.execPath, [cli, '--list-configuration'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [resolved] = JSON.parse(r.stdout) as Resolved[];
  const options = JSON.parse(resolved.env.VSCODE_TEST_OPTIONS) as { files: string[]; mochaOpts: { ui: string } };
  assert.deepEqual(options.files, suiteFiles);
  assert.ok(suiteFiles.length >= 8 && path.basename(suiteFiles[0]) === '1-activation.test.js');
  assert.equal(options.mochaOpts.ui, 'tdd');
  assert.equal(resolved.config.label, 'extension-host');
  assert.deepEqual(resolved.extensionDevelopmentPath, [repoRoot]);
  const workspace = path.join(repoRoot, '.vscode-test', 'ddpm', 'workspace');
  assert.equal(resolved.config.workspaceFolder, workspace);
  assert.ok(resolved.config.launchArgs.includes('--disable-extensions'));
  assert.ok(
    resolved.config.launchArgs.includes(`--user-data-dir=${path.join(repoRoot, '.vscode-test', 'ddpm', 'user-data')}`),
  );
  assert.equal(resolved.config.launchArgs.at(-1), workspace, 'the workspace opens as the folder');
  // The extension host calls run() of extensionTestsPath, as it does test/e2e/suite/index.js's.
  assert.ok(fs.existsSync(resolved.extensionTestsPath));
});

test("test-cli's runner and the suite: a run() for the extension host, and suites written for mocha's tdd interface", async () => {
  const runner = (await import(
    pathToFileURL(path.join(repoRoot, 'node_modules', '@vscode', 'test-cli', 'out', 'runner.cjs')).href
  )) as { run?: unknown; default?: { run?: unknown } };
  assert.equal(typeof (runner.run ?? runner.default?.run), 'function');
  const ours = (await import(pathToFileURL(path.join(suiteDir, 'index.js')).href)) as {
    run?: unknown;
    default?: { run?: unknown };
  };
  assert.equal(typeof (ours.run ?? ours.default?.run), 'function');
  for (const f of suiteFiles) {
    const src = fs.readFileSync(f, 'utf8');
    assert.match(src, /^suite\(/m, `${path.basename(f)} has no tdd suite()`);
    assert.doesNotMatch(src, /^\s*(describe|it|before|after|beforeEach|afterEach)\(/m, `${path.basename(f)}: bdd`);
  }
});

test('npm run test:electron builds, prepares the workspace, then runs vscode-test; README says how', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  assert.equal(pkg.scripts['test:electron'], 'npm run build && node test/e2e/electron-setup.mjs && vscode-test');
  assert.ok(pkg.devDependencies['@vscode/test-cli'] && pkg.devDependencies['@vscode/test-electron']);
  assert.match(fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8'), /npm run test:electron/);
});
