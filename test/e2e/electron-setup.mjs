#!/usr/bin/env node
// Prepares `npm run test:electron` (desktop VS Code through @vscode/test-cli, configured in .vscode-test.mjs): the
// same workspace and user settings as the code-server runs of test/e2e/run.mjs, in .vscode-test/ddpm/ (gitignored,
// next to the VS Code that @vscode/test-electron downloads into .vscode-test/). Needs `npm run build` first: the
// fixture checkpoints are trained with dist/ddpm.js.
import fs from 'node:fs';
import path from 'node:path';
import { makeWorkspace, SETTINGS } from './workspace.mjs';

export const ELECTRON_DIR = path.resolve(import.meta.dirname, '..', '..', '.vscode-test', 'ddpm');
export const ELECTRON_WORKSPACE = path.join(ELECTRON_DIR, 'workspace');
export const ELECTRON_USER_DATA = path.join(ELECTRON_DIR, 'user-data');

if (import.meta.filename === path.resolve(process.argv[1] ?? '')) {
  const t0 = Date.now();
  const log = (...a) => console.log(`[electron-setup ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
  fs.rmSync(ELECTRON_DIR, { recursive: true, force: true });
  fs.mkdirSync(path.join(ELECTRON_USER_DATA, 'User'), { recursive: true });
  fs.writeFileSync(path.join(ELECTRON_USER_DATA, 'User', 'settings.json'), JSON.stringify(SETTINGS, null, 2));
  await makeWorkspace(ELECTRON_WORKSPACE, path.join(ELECTRON_DIR, 'runs'), log);
  log(`workspace ${ELECTRON_WORKSPACE}, user data ${ELECTRON_USER_DATA}`);
}
