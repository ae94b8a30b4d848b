'use strict';
// DDPM: Inpaint Image… and DDPM: Image to Image… called with options (the commands run at once and return the
// result): the kept half of each inpainting is the input's, img2img at strength 0 returns the input, the editing
// view's tab and its restore-after-reload wiring (activation event and serializer of ddpm.edit).
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');
const sharp = require('sharp');
const { extension, workspaceRoot, tempDir, exec } = require('./helpers');

/** The 16-px tiny checkpoint run.mjs trains in the workspace: fast enough for RePaint's walk. */
const tiny = () => path.join(workspaceRoot(), 'checkpoints', 'tiny-e2e.safetensors');

/** Tile k of a grid of s-px images with 2-px gaps, `cols` wide: its grey values. */
async function tile(file, s, cols, k) {
  const { data } = await sharp(file)
    .extract({ left: 2 + (k % cols) * (s + 2), top: 2 + Math.floor(k / cols) * (s + 2), width: s, height: s })
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

/** The digit as the 16-px model sees it (the sidecar resizes the same way: cover, centre). */
async function converted(file, s) {
  const { data } = await sharp(file)
    .resize(s, s, { fit: 'cover' })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

const editTabs = () =>
  vscode.window.tabGroups.all
    .flatMap((g) => g.tabs)
    .filter((t) => t.input instanceof vscode.TabInputWebview && /^DDPM (Inpaint|Image to Image)/.test(t.label));

suite('Editing (ddpm.inpaint, ddpm.img2img with options)', () => {
  // Run alone (--grep), this suite may come first: the commands exist once the extension is active.
  suiteSetup(() => extension().activate());
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('inpaint a digit whose top half is masked: 2 images, the bottom half of each is the input’s', async () => {
    const out = tempDir('inpaint');
    const image = path.join(workspaceRoot(), 'digits', 'digit-2.png');
    // The mask as a 28×28 PNG like the digit (white = regenerate): the top half.
    const mask = path.join(out, 'top.png');
    const px = Buffer.from(Array.from({ length: 28 * 28 }, (_, i) => (i < 14 * 28 ? 255 : 0)));
    await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(mask);
    const saveTo = path.join(out, 'inpainted.png');
    const r = await exec('ddpm.inpaint', {
      image,
      mask,
      checkpoint: tiny(),
      n: 2,
      steps: 8,
      jumps: 2,
      resample: 2,
      saveTo,
    });
    assert.ok(r, 'the command returned no result');
    assert.deepStrictEqual([r.images, r.imageSize, r.modelSteps, r.grid], [2, 16, 14, saveTo]);
    assert.ok(fs.existsSync(saveTo));
    const s = r.imageSize;
    const want = await converted(image, s);
    for (const k of [0, 1]) {
      const got = await tile(saveTo, s, 2, k);
      // Rows 8…15 are kept. The sidecar's libvips and this sharp agree on the resize; allow a grey level for rounding.
      for (let i = 8 * s; i < s * s; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1, `image ${k} pixel ${i}`);
    }
    assert.strictEqual(editTabs().length, 1, 'one editing tab');
    assert.match(editTabs()[0].label, /^DDPM Inpaint: digit-2\.png/);
  });

  test('image to image at strength 0 returns the converted input; the view type restores after a reload', async () => {
    const out = tempDir('img2img');
    const image = path.join(workspaceRoot(), 'digits', 'digit-5.png');
    const saveTo = path.join(out, 'same.png');
    const r = await exec('ddpm.img2img', { image, checkpoint: tiny(), strength: 0, n: 2, steps: 5, saveTo });
    assert.ok(r, 'the command returned no result');
    assert.strictEqual(r.modelSteps, 0);
    const want = await converted(image, r.imageSize);
    for (const k of [0, 1]) {
      const got = await tile(saveTo, r.imageSize, 2, k);
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1, `image ${k} pixel ${i}`);
    }
    const tab = editTabs()[0];
    assert.match(tab.label, /^DDPM Image to Image: digit-5\.png/);
    const viewType = tab.input.viewType.replace(/^mainThreadWebview-/, '');
    assert.strictEqual(viewType, 'ddpm.edit');
    assert.ok(extension().packageJSON.activationEvents.includes('onWebviewPanel:ddpm.edit'));
    assert.throws(
      () => vscode.window.registerWebviewPanelSerializer(viewType, { deserializeWebviewPanel: async () => undefined }),
      /already registered/,
    );
  });
});
