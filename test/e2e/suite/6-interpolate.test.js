'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');
// sharp resolves from the repository's node_modules (this file lives in <repo>/test/e2e/suite).
const sharp = require('sharp');
const { extension, workspaceRoot, tempDir, pngInfo, safetensorsHeader, exec } = require('./helpers');

/** The 28×28 checkpoint the sampling tests use (DDPM_E2E_CHECKPOINT, else the shipped model). */
function mnistCheckpoint() {
  const file = process.env.DDPM_E2E_CHECKPOINT || path.join(extension().extensionPath, 'models', 'mnist.safetensors');
  assert.ok(fs.existsSync(file), `checkpoint ${file} does not exist`);
  return file;
}

function modelConfig(file) {
  const meta = safetensorsHeader(file).__metadata__;
  return JSON.parse(meta.ddpm).model;
}

/** Grey values (first channel) of tile k of a strip: tiles of s×s pixels with 2-px gaps around and between them. */
async function stripTiles(file, s) {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return (k) => {
    const out = new Uint8Array(s * s);
    const x0 = 2 + k * (s + 2);
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++) out[y * s + x] = data[((2 + y) * info.width + x0 + x) * info.channels];
    return out;
  };
}

async function grey(file) {
  const { data, info } = await sharp(file).greyscale().raw().toBuffer({ resolveWithObject: true });
  assert.strictEqual(info.channels, 1);
  return new Uint8Array(data);
}

const maxAbsDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const meanAbsDiff = (a, b) => a.reduce((m, v, i) => m + Math.abs(v - b[i]), 0) / a.length;
const max = (a) => a.reduce((m, v) => Math.max(m, v), 0);

/** The view type of a webview panel's tab (the workbench reports extension panels' types with a prefix). */
const panelViewType = (tab) => tab.input.viewType.replace(/^mainThreadWebview-/, '');

function interpolationTabs() {
  return vscode.window.tabGroups.all
    .flatMap((g) => g.tabs)
    .filter((t) => t.input instanceof vscode.TabInputWebview && t.label.startsWith('DDPM Interpolation'));
}

suite('Interpolation (ddpm.interpolate with options)', () => {
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('two fixture digits, t = 300, DDIM-10, 5 λ: a 212×32 strip that starts with input a and ends with input b', async () => {
    const checkpoint = mnistCheckpoint();
    const s = modelConfig(checkpoint).imageSize;
    assert.strictEqual(s, 28, `${checkpoint} is a ${s}-px model, the strip geometry below assumes 28`);
    const a = path.join(workspaceRoot(), 'digits', 'digit-0.png');
    const b = path.join(workspaceRoot(), 'digits', 'digit-1.png');
    const saveTo = path.join(tempDir('interpolate'), 'strip.png');
    const t0 = Date.now();
    const r = await exec('ddpm.interpolate', { a, b, checkpoint, t: 300, steps: 10, lambdas: 5, saveTo });
    console.log(`ddpm.interpolate -> ${JSON.stringify(r)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepStrictEqual(r, { strip: saveTo });
    assert.ok(fs.existsSync(saveTo), `${saveTo} was not written`);
    const png = pngInfo(fs.readFileSync(saveTo));
    // One row: input a, 5 λ images, input b; 28 px with 2-px gaps: 7·28 + 8·2 = 212 wide, 28 + 4 = 32 high.
    assert.deepStrictEqual({ width: png.width, height: png.height }, { width: 212, height: 32 });
    assert.strictEqual(interpolationTabs().length, 1, 'one "DDPM Interpolation" webview tab');

    const tile = await stripTiles(saveTo, s);
    const [first, last] = [tile(0), tile(6)];
    const [inA, inB] = [await grey(a), await grey(b)];
    console.log(
      `first tile vs input a: max |Δ| ${maxAbsDiff(first, inA)}; last tile vs input b: max |Δ| ${maxAbsDiff(last, inB)}; first vs last: mean |Δ| ${meanAbsDiff(first, last).toFixed(1)}`,
    );
    assert.ok(max(first) > 128, 'the first tile is not (nearly) all black');
    assert.ok(meanAbsDiff(first, last) > 10, 'the first and last tiles differ');
    // The fixtures are already 28×28 greyscale, so "converted to the model's size and channels" changes nothing
    // (up to the round trip through [-1, 1] floats).
    assert.ok(maxAbsDiff(first, inA) <= 2, `the first tile is input a (max |Δ| ${maxAbsDiff(first, inA)})`);
    assert.ok(maxAbsDiff(last, inB) <= 2, `the last tile is input b (max |Δ| ${maxAbsDiff(last, inB)})`);
    for (let k = 1; k <= 5; k++) assert.ok(max(tile(k)) > 0, `λ image ${k} is not all black`);
  });

  test('inputs are converted to the model size: a 16-px tiny checkpoint gives a 128×20 strip', async () => {
    const checkpoint = path.join(workspaceRoot(), 'checkpoints', 'tiny-e2e.safetensors');
    assert.ok(fs.existsSync(checkpoint), `${checkpoint} does not exist (run.mjs makes it)`);
    const s = modelConfig(checkpoint).imageSize;
    assert.strictEqual(s, 16);
    const saveTo = path.join(tempDir('interpolate-tiny'), 'strip.png');
    const r = await exec('ddpm.interpolate', {
      a: path.join(workspaceRoot(), 'digits', 'digit-2.png'),
      b: path.join(workspaceRoot(), 'digits', 'digit-7.png'),
      checkpoint,
      t: 100,
      steps: 5,
      lambdas: 5,
      saveTo,
    });
    assert.deepStrictEqual(r, { strip: saveTo });
    const png = pngInfo(fs.readFileSync(saveTo));
    assert.deepStrictEqual({ width: png.width, height: png.height }, { width: 7 * 16 + 8 * 2, height: 16 + 4 });
    const tile = await stripTiles(saveTo, s);
    assert.ok(max(tile(0)) > 128 && max(tile(6)) > 128, 'the converted inputs are not black');
  });

  // A reloaded window restores a panel only through the serializer of its view type, after activating the extension
  // by the view type's activation event. The extension host cannot reload itself, so this checks both are in place;
  // the UI suite reloads the window and checks what the restored Interpolation panel shows.
  test('the Interpolation panel, like every panel, is restored after a reload: activation event and serializer of its view type', async () => {
    const r = await exec('ddpm.interpolate', {
      a: path.join(workspaceRoot(), 'digits', 'digit-3.png'),
      b: path.join(workspaceRoot(), 'digits', 'digit-4.png'),
      checkpoint: path.join(workspaceRoot(), 'checkpoints', 'tiny-e2e.safetensors'),
      t: 100,
      steps: 2,
      lambdas: 3,
    });
    assert.ok(r, 'the interpolation ran');
    const tabs = interpolationTabs();
    assert.strictEqual(tabs.length, 1, 'one "DDPM Interpolation" webview tab');
    const interpolate = panelViewType(tabs[0]);
    assert.strictEqual(interpolate, 'ddpm.interpolate');
    const activationEvents = extension().packageJSON.activationEvents;
    for (const viewType of [interpolate, 'ddpm.trajectory', 'ddpm.training']) {
      assert.ok(
        activationEvents.includes(`onWebviewPanel:${viewType}`),
        `package.json has no activation event onWebviewPanel:${viewType}`,
      );
      // A second serializer for a view type is refused: this one must be, as the extension has registered its own.
      let registered;
      try {
        vscode.window
          .registerWebviewPanelSerializer(viewType, { deserializeWebviewPanel: async () => undefined })
          .dispose();
        registered = false;
      } catch (e) {
        assert.match(String(e.message), /already registered/);
        registered = true;
      }
      assert.ok(registered, `no webview panel serializer is registered for ${viewType}`);
    }
  });
});
