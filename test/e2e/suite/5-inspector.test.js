'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');
const { workspaceRoot, waitFor, exec } = require('./helpers');

/** The `tiny` training checkpoint run.mjs trained into the workspace (20 steps on digits/). */
function tinyCheckpoint() {
  const file = path.join(workspaceRoot(), 'checkpoints', 'tiny-e2e.safetensors');
  assert.ok(fs.existsSync(file), `${file} does not exist (run.mjs makes it)`);
  return file;
}

/** Waits until the active editor tab shows `file` and returns that tab. */
function activeTabFor(file) {
  return waitFor(
    `the active tab to show ${path.basename(file)}`,
    () => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
      return tab && tab.input && tab.input.uri && tab.input.uri.fsPath === file ? tab : null;
    },
    15000,
    100,
  );
}

function describeInput(input) {
  return `${input && input.constructor && input.constructor.name} ${JSON.stringify(input)}`;
}

suite('Checkpoint inspector (custom editor ddpm.checkpoint)', () => {
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('vscode.openWith opens a training checkpoint in the ddpm.checkpoint custom editor', async () => {
    const file = tinyCheckpoint();
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'ddpm.checkpoint');
    const tab = await activeTabFor(file);
    assert.ok(tab.input instanceof vscode.TabInputCustom, `tab input is ${describeInput(tab.input)}`);
    assert.strictEqual(tab.input.viewType, 'ddpm.checkpoint');
    console.log(`tab "${tab.label}" viewType ${tab.input.viewType}`);
  });

  test('vscode.open picks the inspector for *.safetensors by default (priority "default")', async () => {
    const file = tinyCheckpoint();
    await exec('vscode.open', vscode.Uri.file(file));
    const tab = await activeTabFor(file);
    assert.ok(tab.input instanceof vscode.TabInputCustom, `tab input is ${describeInput(tab.input)}`);
    assert.strictEqual(tab.input.viewType, 'ddpm.checkpoint');
  });

  test('a corrupt .safetensors file still opens in the inspector (which shows the error)', async () => {
    const file = path.join(workspaceRoot(), 'checkpoints', 'corrupt.safetensors');
    assert.ok(fs.existsSync(file), `${file} does not exist (run.mjs makes it)`);
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'ddpm.checkpoint');
    const tab = await activeTabFor(file);
    assert.ok(tab.input instanceof vscode.TabInputCustom, `tab input is ${describeInput(tab.input)}`);
    assert.strictEqual(tab.input.viewType, 'ddpm.checkpoint');
  });
});
