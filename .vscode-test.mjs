// @vscode/test-cli's configuration: `npm run test:electron` runs the extension-host suite (test/e2e/suite/, the same
// files that test/e2e/run.mjs runs in code-server on CI) in desktop VS Code, which @vscode/test-electron downloads into
// .vscode-test/ on first use (it needs a desktop session, or xvfb-run on Linux, and internet access once).
// test/e2e/electron-setup.mjs prepares the workspace and the user settings first. DDPM_VSCODE_VERSION picks the
// version (default: the latest stable), DDPM_E2E_GREP a subset of the tests.
import fs from 'node:fs';
import path from 'node:path';
import { defineConfig } from '@vscode/test-cli';
import { ELECTRON_USER_DATA, ELECTRON_WORKSPACE } from './test/e2e/electron-setup.mjs';

// Listed in name order (the suite's files are numbered: activation first), as test/e2e/suite/index.js loads them; a
// glob would leave the order to the file system.
const suite = path.join(import.meta.dirname, 'test', 'e2e', 'suite');
const files = fs
  .readdirSync(suite)
  .filter((f) => f.endsWith('.test.js'))
  .sort()
  .map((f) => path.join(suite, f));

export default defineConfig({
  label: 'extension-host',
  files,
  version: process.env.DDPM_VSCODE_VERSION || 'stable',
  extensionDevelopmentPath: import.meta.dirname,
  workspaceFolder: ELECTRON_WORKSPACE,
  // Only this extension, a profile of its own with the suite's settings.
  launchArgs: ['--disable-extensions', `--user-data-dir=${ELECTRON_USER_DATA}`],
  mocha: {
    ui: 'tdd',
    timeout: 180_000,
    ...(process.env.DDPM_E2E_GREP ? { grep: process.env.DDPM_E2E_GREP } : {}),
  },
});
