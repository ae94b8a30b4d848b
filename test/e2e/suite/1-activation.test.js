'use strict';
const assert = require('assert');
const vscode = require('vscode');
const { EXTENSION_ID, extension, exec } = require('./helpers');

suite('Activation (real VS Code extension host)', () => {
  test('runs inside VS Code 1.100 with the workspace open', () => {
    console.log(
      `vscode ${vscode.version} appName=${vscode.env.appName} appHost=${vscode.env.appHost} uiKind=${vscode.env.uiKind} remoteName=${vscode.env.remoteName}`,
    );
    assert.match(vscode.version, /^1\.\d+\.\d+/);
    assert.ok(
      vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders.length === 1,
      'one workspace folder',
    );
  });

  test(`${EXTENSION_ID} is loaded from the repository and activates`, async () => {
    const ext = extension();
    assert.strictEqual(ext.packageJSON.main, './dist/extension.js');
    await ext.activate();
    assert.strictEqual(ext.isActive, true);
  });

  test('the contract commands are registered', async () => {
    const all = new Set(await vscode.commands.getCommands(true));
    const missing = [
      'ddpm.info',
      'ddpm.sample',
      'ddpm.train',
      'ddpm.stop',
      'ddpm._sidecarPid',
      'ddpm.installCudaBackend',
      'ddpm.removeNativeBackend',
    ].filter((c) => !all.has(c));
    assert.deepStrictEqual(missing, [], `missing commands: ${missing.join(', ')}`);
  });

  test('ddpm.info returns the sidecar info', async () => {
    const info = await exec('ddpm.info');
    assert.ok(info && typeof info === 'object', `ddpm.info returned ${JSON.stringify(info)}`);
    console.log(
      `sidecar ${info.version} protocol ${info.protocol} backend ${JSON.stringify(info.backend && { name: info.backend.name, device: info.backend.device })}`,
    );
    assert.strictEqual(typeof info.version, 'string');
    assert.ok(info.protocol !== undefined && info.protocol !== null, 'protocol');
    assert.ok(info.backend && typeof info.backend.name === 'string' && info.backend.name.length > 0, 'backend.name');
    assert.ok('device' in info.backend, 'backend.device');
    assert.ok(Array.isArray(info.backend.attempts), 'backend.attempts is an array');
    assert.ok(Array.isArray(info.presets) && info.presets.length > 0, 'presets');
    const names = info.presets.map((p) => (typeof p === 'string' ? p : p.name));
    for (const p of ['tiny', 'mnist']) assert.ok(names.includes(p), `preset ${p} in ${names.join(', ')}`);
    assert.ok('training' in info, 'training field');
    assert.ok(!info.training, `no training job runs yet, got ${JSON.stringify(info.training)}`);
  });

  test('the sidecar gets the wasm backend or a faster one, not the slow tfjs-cpu fallback', async () => {
    // The auto order is tensorflow, webgpu (hardware adapter), wasm, cpu; wasm ships with the extension (dist/*.wasm),
    // so cpu means a packaging or loading problem (e.g. a packaged build that looks for node_modules/@tensorflow).
    const info = await exec('ddpm.info');
    const wasm = (info.backend.attempts || []).find((a) => a && a.name === 'wasm');
    assert.notStrictEqual(info.backend.name, 'cpu', `backend cpu; the wasm attempt says ${JSON.stringify(wasm)}`);
  });

  test('ddpm._sidecarPid is a live process other than the extension host', async () => {
    const pid = await exec('ddpm._sidecarPid');
    assert.ok(Number.isInteger(pid) && pid > 0, `pid ${JSON.stringify(pid)}`);
    assert.notStrictEqual(pid, process.pid);
    process.kill(pid, 0); // throws ESRCH when there is no such process
  });
});
