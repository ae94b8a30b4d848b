// UI suite: drives the real VS Code workbench (code-server) in headless Chromium with playwright-core, the way a user
// would: command palette, quick picks answered with their defaults, the extension's webviews. Run by run.mjs, which
// starts code-server and passes the workbench URL (the extension is loaded from the repository via
// extensionDevelopmentPath). Screenshots go to outDir (test-results/e2e/ui-*.png).
//
// Webviews are nested iframes: the workbench's <iframe class="webview"> (…/index.html?id=…) holds the extension's
// document in <iframe id="active-frame">. Tests look up the frame that contains the element they need.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import sharp from 'sharp';
import { launchBrowser } from './browser.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const REPO = path.resolve(import.meta.dirname, '..', '..');

/** Opens the command palette and runs the command whose row shows `title`; retries while the extension host is still
 * registering commands (the palette does not refresh its list by itself). */
async function runCommand(page, title, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  const input = page.locator('.quick-input-widget input[type="text"]');
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: title }).first();
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill('>' + title);
    try {
      await row.waitFor({ timeout: 2000 });
      // The row whose label is exactly the title (the first row may be another command that fuzzy-matches it:
      // "DDPM: Resume Training" for "DDPM: Train").
      const esc = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const exact = page
        .locator('.quick-input-list .monaco-list-row')
        .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${esc}\\s*$`) }) })
        .first();
      if (await exact.count()) await exact.click();
      else await page.keyboard.press('Enter');
      return;
    } catch {
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) throw new Error(`command "${title}" never appeared in the command palette`);
      await sleep(500);
    }
  }
}

/** Opens a workspace file by name through Quick Open (F1, then the name without the `>` prefix), in its default
 * editor; retries while the file search has not indexed it yet. */
async function quickOpen(page, name, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  const input = page.locator('.quick-input-widget input[type="text"]');
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: name }).first();
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(name);
    try {
      await row.waitFor({ timeout: 3000 });
      await sleep(200); // let the list settle so that Enter takes the first match
      await page.keyboard.press('Enter');
      return;
    } catch {
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) throw new Error(`Quick Open never listed ${name}`);
      await sleep(500);
    }
  }
}

/** What the open quick input shows: title, placeholder or prompt, value and the focused row. */
async function describeQuickInput(page) {
  return page.evaluate(() => {
    const w = document.querySelector('.quick-input-widget');
    if (!w || w.style.display === 'none') return null;
    const text = (sel) => w.querySelector(sel)?.textContent?.trim() || '';
    const input = w.querySelector('input[type="text"]');
    return {
      title: text('.quick-input-title'),
      placeholder: input?.getAttribute('placeholder') || '',
      prompt: text('.quick-input-message'),
      value: input?.value || '',
      focused:
        text('.quick-input-list .monaco-list-row.focused .label-name') ||
        text('.quick-input-list .monaco-list-row.focused'),
    };
  });
}

/** Answers every quick pick / input box that shows up with Enter (its default) until done() is true. */
async function acceptDefaults(page, done, log, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  const answered = [];
  while (!(await done())) {
    if (Date.now() > deadline)
      throw new Error(
        `${what} did not appear within ${timeoutMs / 1000} s after answering ${JSON.stringify(answered)}`,
      );
    const q = await describeQuickInput(page);
    if (q && (await page.locator('.quick-input-widget').isVisible())) {
      await sleep(300); // let a pick finish loading its items
      const q2 = (await describeQuickInput(page)) || q;
      answered.push(q2);
      log(`  quick input: ${JSON.stringify(q2)} -> Enter`);
      await page.keyboard.press('Enter');
      await sleep(700);
    } else {
      await sleep(250);
    }
  }
  return answered;
}

/**
 * Waits for the quick input whose title matches `titleRe`, optionally types `text` into it (a quick pick then filters
 * its rows), checks that the focused row matches `expectFocused` (when given) and presses Enter. Returns what it saw.
 */
async function answerQuickInput(page, titleRe, { text, expectFocused, log, onShown, timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let q;
  while (!(q = await describeQuickInput(page)) || !titleRe.test(q.title)) {
    if (Date.now() > deadline)
      throw new Error(`no quick input titled ${titleRe} within ${timeoutMs / 1000} s (showing ${JSON.stringify(q)})`);
    await sleep(250);
  }
  await sleep(400); // let a pick finish loading its items
  const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  await onShown?.();
  if (text !== undefined) {
    await page.locator('.quick-input-widget input[type="text"]').fill(text);
    await sleep(500);
  }
  q = (await describeQuickInput(page)) || q;
  if (expectFocused && !expectFocused.test(q.focused))
    throw new Error(`${q.title}: the focused row is ${JSON.stringify(q.focused)}, expected ${expectFocused}`);
  log?.(`  quick input: ${JSON.stringify(q)}${text !== undefined ? ` (typed ${JSON.stringify(text)})` : ''} -> Enter`);
  await page.keyboard.press('Enter');
  await sleep(700);
  return { ...q, rows: rows.map((r) => r.replace(/\s+/g, ' ').trim()) };
}

/**
 * Developer: Reload Window, then waits for the new window's workbench (the marker set on the old page gone);
 * resolves to when the reload was asked for.
 */
async function reloadWindow(page) {
  await page.evaluate(() => {
    window.__ddpmBeforeReload = true;
  });
  await runCommand(page, 'Developer: Reload Window', 20_000);
  const t = Date.now();
  while (await page.evaluate(() => window.__ddpmBeforeReload === true).catch(() => true)) {
    if (Date.now() - t > 30_000) throw new Error('the window did not reload');
    await sleep(250);
  }
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  return t;
}

/** The editor tab whose label starts with `title`. */
function tab(page, title) {
  return page
    .locator('.tabs-container .tab')
    .filter({ hasText: new RegExp(`^\\s*${title}`) })
    .first();
}

/** Finds the (webview) frame that contains `selector` (and for which `accept(frame)` holds, when given). */
async function findFrame(page, selector, timeoutMs = 60_000, accept = null) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      if (f === page.mainFrame()) continue;
      try {
        if ((await f.$(selector)) && (!accept || (await accept(f)))) return f;
      } catch {
        /* detached or navigating */
      }
    }
    if (Date.now() > deadline)
      throw new Error(
        `no webview frame with ${selector} within ${timeoutMs / 1000} s (frames: ${page
          .frames()
          .map((f) => f.url().slice(0, 100))
          .join(' | ')})`,
      );
    await sleep(250);
  }
}

/** Pixels of a canvas: {width, height, hash, uniform, png}. Reads toDataURL (unaffected by overlapping toasts);
 * falls back to an element screenshot. */
async function canvasPixels(frame, selector) {
  const size = await frame.$eval(selector, (c) => [c.width, c.height]);
  if (!size[0] || !size[1]) return { width: size[0], height: size[1], hash: 'empty', uniform: true, png: null };
  let png;
  try {
    const url = await frame.$eval(selector, (c) => c.toDataURL('image/png'));
    png = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
  } catch {
    png = await frame.locator(selector).first().screenshot();
  }
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let uniform = true;
  for (let i = 4; i < data.length && uniform; i += 4) {
    if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2] || data[i + 3] !== data[3])
      uniform = false;
  }
  return {
    width: info.width,
    height: info.height,
    hash: crypto.createHash('sha1').update(data).digest('hex').slice(0, 12),
    uniform,
    png,
  };
}

async function bodyState(frame) {
  return frame.evaluate(() => document.body?.dataset?.state ?? null).catch(() => null);
}

/** Visible notification toasts (for logs and failure messages). */
async function notifications(page) {
  return page
    .locator('.notifications-toasts .notification-list-item-message')
    .allInnerTexts()
    .catch(() => []);
}

/** Fails fast when an error notification shows, or the webview says data-state="error". */
async function checkErrors(page, frame) {
  const toast = page
    .locator('.notifications-toasts .notification-list-item')
    .filter({ has: page.locator('.notification-list-item-icon.codicon-error') });
  if (await toast.count()) {
    throw new Error(
      `error notification: ${(await toast.first().locator('.notification-list-item-message').innerText()).trim()}`,
    );
  }
  if (frame && (await bodyState(frame)) === 'error') {
    const text = await frame.evaluate(() => document.body.innerText.replace(/\s+/g, ' ').slice(0, 300)).catch(() => '');
    throw new Error(`the webview shows data-state="error": ${text}`);
  }
}

/**
 * Runs the UI tests against the workbench at `url` with `workspace` open.
 * @returns {Promise<Array<{title: string, state: 'passed'|'failed'|'skipped', ms?: number, error?: string}>>}
 */
export async function runUiSuite({
  url,
  workspace,
  extensionPath = REPO,
  outDir,
  profileDir,
  sidecarDir,
  log = console.log,
  grep,
}) {
  fs.mkdirSync(outDir, { recursive: true });
  const context = await launchBrowser(profileDir);
  const page = context.pages()[0] || (await context.newPage());
  const consoleLog = fs.createWriteStream(path.join(outDir, 'ui-browser-console.log'));
  page.on('console', (m) => consoleLog.write(`${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => consoleLog.write(`pageerror: ${e.message}\n`));
  const shot = async (name) => {
    const file = path.join(outDir, `ui-${name}.png`);
    await page.screenshot({ path: file });
    log(`  screenshot ${path.relative(process.cwd(), file)}`);
  };

  const results = [];
  let workbenchUp = false;
  const test = async (title, fn, { needsWorkbench = true } = {}) => {
    if (grep && !new RegExp(grep).test(title)) return;
    if (needsWorkbench && !workbenchUp) {
      results.push({ title, state: 'skipped' });
      return;
    }
    const t0 = Date.now();
    log(`ui test: ${title}`);
    try {
      await fn();
      results.push({ title, state: 'passed', ms: Date.now() - t0 });
      log(`  passed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      const toasts = await notifications(page);
      const error = `${e.stack || e}${toasts.length ? `\nnotifications: ${JSON.stringify(toasts)}` : ''}`;
      results.push({ title, state: 'failed', ms: Date.now() - t0, error });
      log(`  FAILED: ${error.split('\n').slice(0, 3).join(' / ')}`);
      const safe = title
        .replace(/[^a-z0-9]+/gi, '-')
        .toLowerCase()
        .slice(0, 40);
      await shot(`zz-failed-${safe}`).catch(() => {});
      await page.keyboard.press('Escape').catch(() => {});
    }
  };

  try {
    await test(
      'the workbench opens the workspace with the extension loaded',
      async () => {
        await page.goto(url);
        await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
        await page
          .locator('.explorer-folders-view .monaco-list-row')
          .filter({ hasText: 'digits' })
          .waitFor({ timeout: 60_000 });
        workbenchUp = true;
        await shot('01-workbench');
      },
      { needsWorkbench: false },
    );

    await test('DDPM: Sample with the default picks streams changing trajectory frames, then the grid', async () => {
      await runCommand(page, 'DDPM: Sample');
      const picks = await acceptDefaults(
        page,
        () => tab(page, 'DDPM Trajectory').isVisible(),
        log,
        'the "DDPM Trajectory" tab',
      );
      log(`  answered ${picks.length} quick input(s) with their defaults`);
      const frame = await findFrame(page, 'canvas#xt');
      // First drawn frame
      let a;
      const t = Date.now();
      for (;;) {
        a = await canvasPixels(frame, 'canvas#xt');
        if (!a.uniform) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 120_000) throw new Error('canvas#xt stayed blank for 120 s');
        await sleep(200);
      }
      const stateA = await bodyState(frame);
      await shot('02-trajectory-early');
      fs.writeFileSync(path.join(outDir, 'ui-canvas-xt-early.png'), a.png);
      log(`  canvas#xt ${a.width}×${a.height} hash ${a.hash} (body data-state=${stateA})`);
      if (stateA === 'done') throw new Error('sampling was already done when the first trajectory frame was seen');
      // A later, different frame while it still runs
      let b;
      for (;;) {
        await sleep(500);
        b = await canvasPixels(frame, 'canvas#xt');
        if (b.hash !== a.hash) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 180_000) throw new Error(`canvas#xt never changed from ${a.hash}`);
      }
      await shot('03-trajectory-later');
      fs.writeFileSync(path.join(outDir, 'ui-canvas-xt-later.png'), b.png);
      log(`  canvas#xt changed: ${a.hash} -> ${b.hash}`);
      // The final grid
      const deadline = Date.now() + 240_000;
      for (;;) {
        if ((await bodyState(frame)) === 'done') break;
        if (await frame.$('canvas#grid')) {
          const g = await canvasPixels(frame, 'canvas#grid').catch(() => null);
          if (g && !g.uniform && g.width > 1) break;
        }
        await checkErrors(page, frame);
        if (Date.now() > deadline)
          throw new Error('sampling did not finish (no body[data-state=done], no drawn canvas#grid) within 240 s');
        await sleep(500);
      }
      await frame.$eval('canvas#grid', (c) => c.scrollIntoView({ block: 'center' })).catch(() => {});
      await sleep(300);
      await shot('04-sample-done');
      // The shipped mnist model (1.06M parameters) samples its 16 images on one thread per core (ddpm.sampleWorkers:
      // auto, at most 8), and the panel says so.
      const threads = Math.min(os.availableParallelism(), 8);
      const rate = await frame.locator('#rate').innerText();
      if (!(threads > 1 ? new RegExp(`^done in [\\d.]+ s on ${threads} threads$`) : /^done in [\d.]+ s$/).test(rate)) {
        throw new Error(`#rate says '${rate}' after sampling on ${threads} core(s)`);
      }
      log(`  #rate: ${rate}`);
      if (await frame.$('canvas#grid')) {
        const g = await canvasPixels(frame, 'canvas#grid');
        if (g.png) fs.writeFileSync(path.join(outDir, 'ui-canvas-grid.png'), g.png);
        log(`  canvas#grid ${g.width}×${g.height} uniform=${g.uniform}`);
        if (g.uniform) throw new Error('canvas#grid is blank after sampling finished');
      }
    });

    await test('DDPM: Sample on a class-conditional checkpoint: class 3 chosen in the quick pick, every image labelled 3', async () => {
      const checkpoint = path.join(workspace, 'checkpoints', 'conditional-e2e.safetensors');
      if (!fs.existsSync(checkpoint)) throw new Error(`${checkpoint} does not exist (run.mjs makes it)`);
      // The checkpoint pick offers ddpm.defaultCheckpoint first: point it at the conditional fixture for this test.
      const settingsFile = path.join(workspace, '.vscode', 'settings.json');
      const before = fs.existsSync(settingsFile) ? fs.readFileSync(settingsFile, 'utf8') : null;
      fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
      fs.writeFileSync(
        settingsFile,
        JSON.stringify({ ...(before ? JSON.parse(before) : {}), 'ddpm.defaultCheckpoint': checkpoint }, null, 2),
      );
      try {
        await sleep(1500);
        await runCommand(page, 'View: Close All Editors', 20_000);
        await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
        // The workbench notices the new settings file after a while: until then the pick starts with the shipped model.
        let ckpt;
        for (let attempt = 1; ; attempt++) {
          await runCommand(page, 'DDPM: Sample');
          try {
            ckpt = await answerQuickInput(page, /checkpoint$/, {
              expectFocused: /^conditional-e2e\.safetensors/,
              log,
              onShown: () => sleep(1000).then(() => shot('04a-checkpoint-pick')),
            });
            break;
          } catch (e) {
            if (attempt === 10) throw e;
            await page.keyboard.press('Escape');
            await sleep(2000);
          }
        }
        if (!ckpt.rows.some((r) => /^Shipped MNIST model/.test(r)))
          throw new Error(`the checkpoint pick does not offer the shipped model: ${JSON.stringify(ckpt.rows)}`);
        const cls = await answerQuickInput(page, /— class$/, {
          text: '3',
          expectFocused: /^3$/,
          log,
          onShown: () => shot('04b-class-pick'),
        });
        log(`  class pick rows before typing: ${JSON.stringify(cls.rows)}`);
        if (!/^Each class in turn/.test(cls.rows[0] || ''))
          throw new Error(`the class pick does not start with "Each class in turn": ${JSON.stringify(cls.rows)}`);
        await answerQuickInput(page, /— guidance scale$/, { expectFocused: /^2$/, log });
        await answerQuickInput(page, /number of images$/, { text: '9', expectFocused: /^9$/, log });
        const rest = await acceptDefaults(
          page,
          () => tab(page, 'DDPM Trajectory').isVisible(),
          log,
          'the "DDPM Trajectory" tab',
        );
        if (rest.length !== 2) throw new Error(`expected the sampler and seed after n, got ${JSON.stringify(rest)}`);
        const frame = await findFrame(page, 'canvas#grid', 60_000, (f) =>
          f.$eval('#caption', (e) => (e.textContent || '').includes('conditional-e2e')).catch(() => false),
        );
        const caption = await frame.locator('#caption').innerText();
        log(`  #caption: ${caption}`);
        if (!/ · class 3 · guidance 2 · /.test(caption))
          throw new Error(`the caption does not give the class and guidance: ${JSON.stringify(caption)}`);
        /** The class labels drawn on a grid: [{row, text}], and its layer's row captions. */
        const labelsOf = (id) =>
          frame.$eval(`#${id}-cells`, (layer) => ({
            cells: [...layer.querySelectorAll('.cell-label')].map((e) => ({
              row: Number(e.dataset.row),
              text: e.textContent,
            })),
            rows: layer.dataset.rows ?? null,
          }));
        const t = Date.now();
        let live = null;
        for (;;) {
          const state = await bodyState(frame);
          if (!live) {
            const xt = await canvasPixels(frame, 'canvas#xt');
            if (!xt.uniform) {
              live = { state, ...(await labelsOf('xt')) };
              log(`  live x_t (data-state=${state}): ${JSON.stringify(live)}`);
              await shot('04c-sample-class-live');
            }
          }
          if (state === 'done') break;
          await checkErrors(page, frame);
          if (Date.now() - t > 180_000) throw new Error('sampling the conditional checkpoint did not finish in 180 s');
          await sleep(300);
        }
        const grid = await canvasPixels(frame, 'canvas#grid');
        if (grid.uniform) throw new Error('canvas#grid is blank after sampling finished');
        fs.writeFileSync(path.join(outDir, 'ui-canvas-grid-class.png'), grid.png);
        const want = {
          rows: '3 3 3\n3 3 3\n3 3 3',
          cells: [0, 0, 0, 1, 1, 1, 2, 2, 2].map((row) => ({ row, text: '3' })),
        };
        for (const id of ['xt', 'x0', 'grid']) {
          const got = await labelsOf(id);
          log(`  #${id}-cells: ${JSON.stringify(got.rows)}, ${got.cells.length} labels`);
          assert.deepStrictEqual(got, want, `#${id}-cells`);
        }
        if (live) assert.deepStrictEqual({ cells: live.cells, rows: live.rows }, want, 'the live x_t labels');
        await frame.$eval('canvas#grid', (c) => c.scrollIntoView({ block: 'center' })).catch(() => {});
        await sleep(300);
        await shot('04d-sample-class-done');

        // A reloaded window restores the panel with its grid, labels and caption (the webview's setState).
        await reloadWindow(page);
        await tab(page, 'DDPM Trajectory').waitFor({ timeout: 60_000 });
        const restored = await findFrame(page, '#grid-cells .cell-label', 60_000);
        const got = await restored.$eval('#grid-cells', (layer) => ({
          cells: [...layer.querySelectorAll('.cell-label')].map((e) => ({
            row: Number(e.dataset.row),
            text: e.textContent,
          })),
          rows: layer.dataset.rows ?? null,
        }));
        assert.deepStrictEqual(got, want, 'the restored #grid-cells');
        const restoredCaption = await restored.locator('#caption').innerText();
        if (restoredCaption !== caption) throw new Error(`restored caption ${JSON.stringify(restoredCaption)}`);
        await shot('04e-sample-class-restored');
        // The restored panel's "Sample again" runs with the same settings (class 3, the seed it shows).
        await restored.click('#again');
        const a0 = Date.now();
        // It runs (the view leaves "done"), then is done again with its grid labelled.
        while ((await bodyState(restored)) === 'done') {
          await checkErrors(page, restored);
          if (Date.now() - a0 > 20_000) throw new Error('"Sample again" in the restored panel did not start a run');
          await sleep(100);
        }
        let againState;
        while (
          (againState = await bodyState(restored)) !== 'done' ||
          (await restored.$('#grid-cells .cell-label')) === null
        ) {
          await checkErrors(page, restored);
          if (Date.now() - a0 > 180_000)
            throw new Error(`"Sample again" in the restored panel: data-state ${againState} after 180 s`);
          await sleep(300);
        }
        const again = await restored.$eval('#grid-cells', (layer) => ({
          cells: [...layer.querySelectorAll('.cell-label')].map((e) => ({
            row: Number(e.dataset.row),
            text: e.textContent,
          })),
          rows: layer.dataset.rows ?? null,
        }));
        assert.deepStrictEqual(again, want, 'the labels after "Sample again" in the restored panel');
        log(
          `  "Sample again" in the restored panel: done in ${((Date.now() - a0) / 1000).toFixed(1)} s, labels ${again.rows}`,
        );
        await shot('04f-sample-class-restored-again');
      } finally {
        if (before === null) fs.rmSync(settingsFile, { force: true });
        else fs.writeFileSync(settingsFile, before);
        await sleep(1000);
        await runCommand(page, 'View: Close All Editors', 20_000).catch(() => {});
      }
    });

    let trainingStarted = false;
    await test('DDPM: Train with the default picks draws a loss curve that grows', async () => {
      await runCommand(page, 'DDPM: Train');
      const picks = await acceptDefaults(
        page,
        () => tab(page, 'DDPM Training').isVisible(),
        log,
        'the "DDPM Training" tab',
      );
      log(`  answered ${picks.length} quick input(s) with their defaults`);
      trainingStarted = true;
      const frame = await findFrame(page, '#loss canvas');
      await sleep(20_000);
      let a;
      const t = Date.now();
      for (;;) {
        a = await canvasPixels(frame, '#loss canvas');
        if (!a.uniform) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 60_000) throw new Error('the loss canvas stayed blank');
        await sleep(500);
      }
      await shot('05-training');
      log(`  #loss canvas ${a.width}×${a.height} hash ${a.hash}`);
      let b;
      for (;;) {
        await sleep(1000);
        b = await canvasPixels(frame, '#loss canvas');
        if (b.hash !== a.hash) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 90_000) throw new Error(`the loss canvas did not change for 30 s (hash ${a.hash})`);
      }
      await shot('06-training-later');
      fs.writeFileSync(path.join(outDir, 'ui-canvas-loss.png'), b.png);
      log(`  #loss canvas changed: ${a.hash} -> ${b.hash}`);
    });

    await test('the Training view plots the loss by quarter of t, its legend naming the quarters in terms of T', async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      const frame = await findFrame(page, '#quarters canvas', 10_000);
      const t = Date.now();
      let filled;
      let q;
      for (;;) {
        filled = Number(await frame.$eval('#quarters', (e) => e.dataset.filled || '0'));
        q = await canvasPixels(frame, '#quarters canvas');
        if (filled === 4 && !q.uniform) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 60_000)
          throw new Error(`#quarters: ${filled} of 4 quarter series drawn (canvas uniform: ${q.uniform})`);
        await sleep(500);
      }
      const legend = await frame.$$eval('#quarters .u-legend .u-series th', (es) =>
        es.map((e) => (e.textContent || '').trim()),
      );
      log(`  #quarters legend: ${JSON.stringify(legend)}; ${filled} series; canvas ${q.width}×${q.height}`);
      for (const want of ['t < 250', 't 250–499', 't 500–749', 't ≥ 750'])
        if (!legend.includes(want)) throw new Error(`the quarter legend has no "${want}": ${JSON.stringify(legend)}`);
      fs.writeFileSync(path.join(outDir, 'ui-canvas-quarters.png'), q.png);
      // ddpm.train.evalEvery is 10 in this profile: the held-out loss plot appears with the first evaluation.
      let e;
      for (;;) {
        const hidden = await frame.$eval('#evalFigure', (el) => el.hidden);
        if (!hidden) {
          e = await canvasPixels(frame, '#evalFigure canvas');
          if (!e.uniform) break;
        }
        await checkErrors(page, frame);
        if (Date.now() - t > 120_000)
          throw new Error('the held-out loss plot never appeared (ddpm.train.evalEvery = 10)');
        await sleep(1000);
      }
      fs.writeFileSync(path.join(outDir, 'ui-canvas-eval.png'), e.png);
      await frame.$eval('#evalFigure', (el) => el.scrollIntoView({ block: 'center' }));
      await sleep(300);
      await shot('06c-training-heldout');
      await frame.$eval('#quarters', (e) => e.scrollIntoView({ block: 'center' }));
      await sleep(300);
      await shot('06a-training-quarters');
      await frame.$eval('#stats', (e) => e.scrollIntoView({ block: 'start' }));
    });

    await test('the training panel names its backend and threads, and offers the native backend on wasm', async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      const frame = await findFrame(page, '#loss canvas', 10_000);
      const device = await frame.$eval('#device', (e) => e.textContent);
      log(`  #device: ${device}`);
      if (!/^backend: wasm — WebAssembly SIMD/.test(device)) throw new Error(`#device says ${JSON.stringify(device)}`);
      const stats = await frame.$eval('#stats', (e) => e.textContent);
      log(`  #stats: ${stats}`);
      // The default preset (mnist) trains on one thread per core under workers: 'auto'.
      if (os.availableParallelism() >= 2 && !/ it\/s on \d+ threads · ETA /.test(stats))
        throw new Error(`#stats does not give the thread count: ${JSON.stringify(stats)}`);
      if (await frame.$eval('#hint', (e) => e.hidden))
        throw new Error('the native backend hint is hidden while training on wasm');
      await frame.click('#installNative');
      const t = Date.now();
      let q;
      while (!(q = await describeQuickInput(page)) || q.title !== 'DDPM: Install a native TensorFlow backend') {
        if (Date.now() - t > 15_000)
          throw new Error(`the install button did not open the install pick (quick input: ${JSON.stringify(q)})`);
        await sleep(250);
      }
      log(`  install pick: ${JSON.stringify(q)}`);
      await shot('06b-install-native-offer');
      await page.keyboard.press('Escape');
      while (await describeQuickInput(page)) {
        if (Date.now() - t > 25_000) throw new Error('the install pick did not close on Escape');
        await sleep(250);
      }
    });

    /** The Training view's loss curve: its number of points, first and last step; body data-state; #stats. */
    const lossCurve = async (frame) => ({
      ...(await frame.$eval('#loss', (e) => ({
        points: Number(e.dataset.points || 0),
        first: Number(e.dataset.first || 0),
        last: Number(e.dataset.last || 0),
      }))),
      state: await bodyState(frame),
      stats: await frame.$eval('#stats', (e) => e.textContent || ''),
    });
    await test('Developer: Reload Window mid-training: the Training view re-attaches, its loss history goes on', async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      let frame = await findFrame(page, '#loss canvas', 10_000);
      const before = await lossCurve(frame);
      log(`  before the reload: ${JSON.stringify(before)}`);
      if (before.state !== 'running' || before.points < 2) throw new Error(`not training: ${JSON.stringify(before)}`);
      await reloadWindow(page);
      await tab(page, 'DDPM Training').waitFor({ timeout: 60_000 });
      frame = await findFrame(page, '#loss canvas', 60_000);
      const t = Date.now();
      let after;
      for (;;) {
        after = await lossCurve(frame);
        if (after.state === 'running' && after.last > before.last + 2) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 90_000) throw new Error(`the restored view did not re-attach: ${JSON.stringify(after)}`);
        await sleep(500);
      }
      log(`  after the reload: ${JSON.stringify(after)}`);
      // The whole history: from the run's first step, at least the points it had before, and more since.
      assert.equal(after.first, before.first, 'the loss curve starts where it started');
      assert.ok(after.points > before.points, `${after.points} points after, ${before.points} before`);
      assert.ok(!(await frame.$eval('#stop', (b) => b.disabled)), 'Stop is enabled in the re-attached view');
      assert.equal(await page.locator('.tabs-container .tab').filter({ hasText: 'DDPM Training' }).count(), 1);
      await shot('06d-training-reattached');
    });

    await test('DDPM: Stop ends the training (the loss curve stops changing)', async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      const frame = await findFrame(page, '#loss canvas', 10_000);
      const before = await bodyState(frame);
      await runCommand(page, 'DDPM: Stop', 20_000);
      if (before === 'running') {
        // The training webview marks its body with the job's state (running, then done / stopped / failed).
        const t = Date.now();
        let state;
        while ((state = await bodyState(frame)) === 'running') {
          if (Date.now() - t > 60_000)
            throw new Error('the training webview still says data-state="running" 60 s after DDPM: Stop');
          await sleep(250);
        }
        log(`  training webview data-state: ${before} -> ${state}`);
        if (state !== 'stopped')
          throw new Error(`expected data-state="stopped" after DDPM: Stop, got ${JSON.stringify(state)}`);
      } else {
        await sleep(3000);
      }
      const a = await canvasPixels(frame, '#loss canvas');
      await sleep(4000);
      const b = await canvasPixels(frame, '#loss canvas');
      await shot('07-stopped');
      log(`  notifications: ${JSON.stringify(await notifications(page))}`);
      if (a.hash !== b.hash) throw new Error('the loss curve still changes after DDPM: Stop');
      const stats = await frame.$eval('#stats', (e) => e.textContent || '');
      if (/ETA|it\/s/.test(stats)) throw new Error(`the stopped view still shows a rate or an ETA: ${stats}`);
    });

    await test('Resume Training… in the stopped Training view: same tab, "resumed from step N", the whole loss history', async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
      const frame = await findFrame(page, '#loss canvas', 10_000);
      const stopped = await lossCurve(frame);
      log(`  stopped: ${JSON.stringify(stopped)}`);
      if (await frame.$eval('#ended', (e) => e.hidden)) throw new Error('no Resume button in the stopped view');
      await frame.click('#resume');
      const q = await answerQuickInput(page, /DDPM: Resume Training — .* is at step \d+: train up to step/, { log });
      const at = Number(/is at step (\d+)/.exec(q.title)[1]);
      assert.equal(at, stopped.last, 'the step it resumes from is where it stopped');
      const t = Date.now();
      let now;
      for (;;) {
        now = await lossCurve(frame);
        if (now.state === 'running' && now.last > at + 2) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 90_000) throw new Error(`the resumed run did not train on: ${JSON.stringify(now)}`);
        await sleep(500);
      }
      log(`  resumed: ${JSON.stringify(now)}`);
      assert.match(now.stats, new RegExp(`resumed from step ${at}`));
      assert.equal(now.first, stopped.first, 'the loss history before the resume is still there');
      assert.ok(now.points > stopped.points, `${now.points} points now, ${stopped.points} when stopped`);
      assert.equal(await page.locator('.tabs-container .tab').filter({ hasText: 'DDPM Training' }).count(), 1);
      await shot('07b-resumed');
    });

    await test('a killed sidecar gives one clear notification (what ended, Resume, Open Log), no protocol message', async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      const frame = await findFrame(page, '#loss canvas', 10_000);
      if ((await bodyState(frame)) !== 'running') throw new Error('the resumed training is not running');
      const { pid } = JSON.parse(fs.readFileSync(path.join(sidecarDir, 'sidecar.json'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      log(`  killed the sidecar ${pid}`);
      const t = Date.now();
      while ((await bodyState(frame)) === 'running') {
        if (Date.now() - t > 30_000) throw new Error('the Training view still says running 30 s after the kill');
        await sleep(250);
      }
      await sleep(3000); // any later toast would show by now
      const toasts = await notifications(page);
      log(`  notifications: ${JSON.stringify(toasts)}`);
      await shot('07c-sidecar-killed');
      assert.equal(toasts.length, 1, `one notification, got ${JSON.stringify(toasts)}`);
      assert.match(toasts[0], /The DDPM sidecar stopped unexpectedly\. Training of .* ended at step \d+/);
      assert.doesNotMatch(toasts.join('\n'), /Pending response|Server will not be restarted|connection got disposed/);
      const buttons = await page
        .locator('.notifications-toasts .notification-list-item .monaco-button')
        .allInnerTexts();
      assert.ok(buttons.includes('Resume Training') && buttons.includes('Open Log'), JSON.stringify(buttons));
      assert.equal(await bodyState(frame), 'failed');
      const stats = await frame.$eval('#stats', (e) => e.textContent || '');
      assert.match(stats, /the sidecar stopped unexpectedly/);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
    });

    await test("a checkpoint in the Training view's list opens in the inspector (the sidecar starting again)", async () => {
      if (!trainingStarted) throw new Error('training did not start in the previous test');
      const frame = await findFrame(page, '#loss canvas', 10_000);
      const items = await frame.$$eval('#checkpoints li', (lis) => lis.map((li) => li.dataset.path || ''));
      log(`  checkpoints listed: ${JSON.stringify(items)}`);
      if (!items.length) throw new Error('the Training view lists no checkpoint');
      const name = path.basename(items[0]);
      await frame.click('#checkpoints li .ckpt-inspect');
      await tab(page, name).waitFor({ timeout: 30_000 });
      const inspector = await findFrame(page, '#card', 60_000, (f) =>
        f.$eval('#path', (e, n) => (e.textContent || '').endsWith(n), name).catch(() => false),
      );
      const t = Date.now();
      let state;
      while ((state = await bodyState(inspector)) !== 'ready') {
        if (state === 'error' || Date.now() - t > 60_000)
          throw new Error(`the inspector of ${name} says data-state=${JSON.stringify(state)}`);
        await sleep(200);
      }
      // A training checkpoint offers to resume from it.
      assert.ok(!(await inspector.$eval('#resume', (b) => b.hidden)), 'the inspector offers Resume Training…');
      await shot('07d-checkpoint-from-training-view');
      await runCommand(page, 'View: Close All Editors', 20_000);
    });

    // ---- checkpoint inspector (custom editor for *.safetensors) and interpolation ----------------------------------

    /** Opens a workspace .safetensors via Quick Open (our editor is the default) and returns its webview frame once
     * body[data-state] has left "loading". */
    const openInInspector = async (name) => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000); // toasts would cover the screenshots
      await quickOpen(page, name);
      await tab(page, name).waitFor({ timeout: 30_000 });
      const frame = await findFrame(page, '#card', 60_000, (f) =>
        f.$eval('#path', (e, n) => (e.textContent || '').endsWith(n), name).catch(() => false),
      );
      const t = Date.now();
      let state;
      while (!['ready', 'error'].includes((state = await bodyState(frame)))) {
        if (Date.now() - t > 60_000)
          throw new Error(`the inspector of ${name} stayed in data-state=${JSON.stringify(state)} for 60 s`);
        await sleep(200);
      }
      log(
        `  ${name}: body data-state=${state} data-open-ms=${await frame.evaluate(() => document.body.dataset.openMs)}`,
      );
      return { frame, state };
    };

    await test('the checkpoint inspector opens a .safetensors from Quick Open: model card, tensor statistics, preview', async () => {
      const name = 'tiny-e2e.safetensors';
      const file = path.join(workspace, 'checkpoints', name);
      const expected = JSON.parse(
        execFileSync(process.execPath, [path.join(REPO, 'dist', 'ddpm.js'), 'inspect', file, '--json'], {
          encoding: 'utf8',
        }),
      );
      const { frame, state } = await openInInspector(name);
      if (state !== 'ready')
        throw new Error(
          `data-state=${state}: ${await frame
            .locator('#error')
            .innerText()
            .catch(() => '')}`,
        );
      const params = await frame.$eval('#card', (e) => e.dataset.params);
      log(
        `  #card data-params=${params}; ddpm inspect --json: params=${expected.params}, ${expected.tensors.length} tensors, preset ${expected.preset}`,
      );
      if (!/^\d+$/.test(params || '') || Number(params) <= 0)
        throw new Error(`#card data-params is ${JSON.stringify(params)}, not a positive integer`);
      if (Number(params) !== expected.params)
        throw new Error(`#card data-params=${params}, ddpm inspect says ${expected.params}`);
      const card = await frame.locator('#card').innerText();
      if (!card.includes(expected.params.toLocaleString('en-US')))
        throw new Error(`the model card does not show ${expected.params.toLocaleString('en-US')} parameters:\n${card}`);
      if (!(await frame.locator('#note').isHidden()))
        throw new Error('#note (foreign file) is visible for our own checkpoint');
      const openMs = Number(await frame.evaluate(() => document.body.dataset.openMs));
      if (!(openMs >= 0)) throw new Error(`body[data-open-ms] is ${openMs}`);

      // Filter the table, then select a tensor: the sidecar computes its statistics (ddpm/tensorStats).
      await frame.fill('#filter', 'conv_in');
      const row = frame.locator('.row-item[data-name="model.conv_in.weight"]');
      await row.waitFor({ timeout: 10_000 });
      const shown = await frame.$$eval('.row-item', (rs) => rs.map((r) => r.dataset.name));
      log(`  filter "conv_in" shows ${shown.length} row(s): ${shown.join(', ')}`);
      if (!shown.length || shown.some((n) => !n.includes('conv_in')))
        throw new Error(`filter "conv_in" shows ${JSON.stringify(shown)}`);
      await row.click();
      await frame.locator('#stats[data-mean]').waitFor({ state: 'attached', timeout: 30_000 });
      const statsName = (await frame.locator('#statsName').innerText()).trim();
      const stats = await frame.locator('#stats').innerText();
      const mean = Number(await frame.$eval('#stats', (e) => e.dataset.mean));
      log(`  #statsName ${statsName}; #stats ${JSON.stringify(stats)}; data-mean ${mean}`);
      if (statsName !== 'model.conv_in.weight') throw new Error(`#statsName shows ${JSON.stringify(statsName)}`);
      for (const k of ['count', 'min', 'max', 'mean', 'std']) {
        if (!new RegExp(`^${k}\\s+\\S`, 'm').test(stats))
          throw new Error(`#stats has no "${k} …" line: ${JSON.stringify(stats)}`);
      }
      const want = expected.tensors.find((t) => t.name === 'model.conv_in.weight').shape.reduce((a, b) => a * b, 1);
      const count = Number(/^count\s+([\d,]+)/m.exec(stats)[1].replace(/,/g, ''));
      if (count !== want) throw new Error(`#stats count ${count}, the tensor has ${want} values`);
      if (!Number.isFinite(mean)) throw new Error(`#stats data-mean is ${mean}`);
      const hist = await canvasPixels(frame, 'canvas#hist');
      if (hist.uniform) throw new Error('the histogram canvas#hist is blank');
      fs.writeFileSync(path.join(outDir, 'ui-canvas-hist.png'), hist.png);
      await frame.$eval('#statsPanel', (e) => e.scrollIntoView({ block: 'center' }));
      await sleep(300);
      await shot('08-inspector-stats');

      // Preview grid (16 samples, DDIM-20 from this checkpoint).
      await frame.click('#previewBtn');
      const t = Date.now();
      let preview;
      for (;;) {
        preview = await canvasPixels(frame, 'canvas#preview');
        if (!preview.uniform) break;
        await checkErrors(page, frame);
        if (Date.now() - t > 90_000)
          throw new Error(
            `canvas#preview stayed blank for 90 s (caption: ${await frame
              .locator('#previewCaption')
              .innerText()
              .catch(() => '')})`,
          );
        await sleep(300);
      }
      fs.writeFileSync(path.join(outDir, 'ui-canvas-preview.png'), preview.png);
      log(`  canvas#preview ${preview.width}×${preview.height}: ${await frame.locator('#previewCaption').innerText()}`);
      await frame.$eval('#card', (e) => e.scrollIntoView({ block: 'start' }));
      await sleep(300);
      await shot('09-inspector-preview');
    });

    await test('the inspector shows an error for a corrupt .safetensors file (100 random bytes)', async () => {
      const { frame, state } = await openInInspector('corrupt.safetensors');
      if (state !== 'error') throw new Error(`expected data-state="error", got ${JSON.stringify(state)}`);
      const error = frame.locator('#error');
      if (!(await error.isVisible())) throw new Error('#error is not visible');
      const text = (await error.innerText()).trim();
      log(`  #error: ${JSON.stringify(text)}`);
      if (text.length < 10) throw new Error(`#error text is ${JSON.stringify(text)}`);
      for (const id of ['sample', 'previewBtn']) {
        if (!(await frame.locator(`#${id}`).isDisabled())) throw new Error(`#${id} is enabled for a corrupt file`);
      }
      await shot('10-inspector-corrupt');
    });

    await test('the inspector lists a foreign safetensors file with a note (no DDPM Studio metadata)', async () => {
      const { frame, state } = await openInInspector('foreign.safetensors');
      if (state !== 'ready') throw new Error(`expected data-state="ready", got ${JSON.stringify(state)}`);
      const note = frame.locator('#note');
      if (!(await note.isVisible())) throw new Error('#note is not visible');
      log(`  #note: ${JSON.stringify((await note.innerText()).trim())}`);
      const params = await frame.$eval('#card', (e) => e.dataset.params);
      if (params !== '9') throw new Error(`#card data-params=${params}, the file holds 2×3 + 3 = 9 values`);
      const names = await frame.$$eval('.row-item', (rs) => rs.map((r) => r.dataset.name).sort());
      if (names.join() !== 'bias,weight') throw new Error(`tensor rows ${JSON.stringify(names)}`);
      if (!(await frame.locator('#previewBtn').isDisabled()))
        throw new Error('#previewBtn is enabled for a foreign file');
      await shot('11-inspector-foreign');
    });

    await test('the inspector of a conditional checkpoint shows its classes; "Sample from this checkpoint" asks for the class', async () => {
      const { frame, state } = await openInInspector('conditional-e2e.safetensors');
      if (state !== 'ready') throw new Error(`expected data-state="ready", got ${JSON.stringify(state)}`);
      const card = await frame.locator('#card').innerText();
      log(`  #card classes row: ${JSON.stringify(/classes.*/.exec(card)?.[0])}`);
      if (!/^classes\s+10 \(0, 1, …, 9\)$/m.test(card))
        throw new Error(`the model card has no "classes 10 (0, 1, …, 9)" row:\n${card}`);
      await shot('11b-inspector-classes');
      await frame.click('#sample');
      // Each class in turn (the default) with the default guidance; then the Trajectory view labels the 16 images
      // (ddpm.numSamples) 0 1 2 3 / 4 5 6 7 / 8 9 0 1 / 2 3 4 5.
      await answerQuickInput(page, /— class$/, { expectFocused: /^Each class in turn/, log });
      await answerQuickInput(page, /— guidance scale$/, { expectFocused: /^2$/, log });
      await tab(page, 'DDPM Trajectory').waitFor({ timeout: 30_000 });
      const trajectory = await findFrame(page, '#grid-cells', 60_000);
      const t = Date.now();
      while ((await bodyState(trajectory)) !== 'done') {
        await checkErrors(page, trajectory);
        if (Date.now() - t > 180_000) throw new Error('sampling from the inspector did not finish in 180 s');
        await sleep(300);
      }
      const caption = await trajectory.locator('#caption').innerText();
      log(`  #caption: ${caption}`);
      if (!/ · each class in turn · guidance 2 · /.test(caption))
        throw new Error(`the caption does not give the class choice and guidance: ${JSON.stringify(caption)}`);
      const rows = await trajectory.$eval('#grid-cells', (e) => e.dataset.rows);
      assert.equal(rows, '0 1 2 3\n4 5 6 7\n8 9 0 1\n2 3 4 5');
      const texts = await trajectory.$$eval('#grid-cells .cell-label', (es) => es.map((e) => e.textContent).join(''));
      assert.equal(texts, '0123456789012345');
      await trajectory.$eval('canvas#grid', (c) => c.scrollIntoView({ block: 'center' })).catch(() => {});
      await sleep(300);
      await shot('11c-inspector-sample-each');
    });

    /** The evaluation stored beside tiny-e2e.safetensors, to find again when it is reopened. */
    let evaluated = null;
    await test("the inspector's Evaluate… on a tiny checkpoint (its own data, N = 2) shows bits/dim and the per-t curve", async () => {
      const name = 'tiny-e2e.safetensors';
      const { frame, state } = await openInInspector(name);
      if (state !== 'ready') throw new Error(`expected data-state="ready", got ${JSON.stringify(state)}`);
      if (await frame.$eval('#evalSection', (e) => e.hidden)) throw new Error('#evalSection is hidden');
      await frame.click('#evaluate');
      const data = await answerQuickInput(page, /^DDPM: Evaluate — data$/, {
        expectFocused: /^The checkpoint's data: folder:/,
        log,
      });
      log(`  data rows: ${JSON.stringify(data.rows)}`);
      await answerQuickInput(page, /^DDPM: Evaluate — images \(N\)$/, { text: '2', log });
      // A folder has no classifier: no sample-quality question; the run starts.
      const t = Date.now();
      let sawProgress = false;
      let st;
      while ((st = await frame.evaluate(() => document.body.dataset.eval || '')) !== 'done') {
        if (st === 'running' && !sawProgress && !(await frame.$eval('#stopEval', (e) => e.hidden))) {
          sawProgress = true;
          await sleep(1500);
          log(`  running: ${await frame.locator('#evalStatus').innerText()}`);
          await frame.$eval('#evalSection', (e) => e.scrollIntoView({ block: 'start' }));
          await shot('11d-inspector-evaluating');
        }
        if (st === 'failed' || st === 'stopped')
          throw new Error(`the evaluation ${st}: ${await frame.locator('#evalStatus').innerText()}`);
        await checkErrors(page, frame);
        if (Date.now() - t > 240_000) throw new Error(`the evaluation did not finish in 240 s (data-eval=${st})`);
        await sleep(300);
      }
      log(`  evaluated in ${((Date.now() - t) / 1000).toFixed(1)} s; stop button shown while running: ${sawProgress}`);
      const table = await frame.locator('#evalTable').innerText();
      const bpd = Number(await frame.$eval('#evalTable', (e) => e.dataset.bpd));
      const at = await frame.$eval('#evalTable', (e) => e.dataset.at);
      log(`  #evalTable data-bpd=${bpd}:\n${table}`);
      if (!(bpd > 0) || !Number.isFinite(bpd)) throw new Error(`#evalTable data-bpd is ${bpd}`);
      if (!/^bits\/dim\s+\d+\.\d{3} ± \d+\.\d{3} bits\/dim$/m.test(table))
        throw new Error(`no "bits/dim x ± y bits/dim" row:\n${table}`);
      for (const k of ['prior L_T', 'decoder L_0', 'KL terms'])
        if (!table.includes(k)) throw new Error(`#evalTable has no ${k} row`);
      const curve = await canvasPixels(frame, '#perT canvas');
      if (curve.uniform) throw new Error('the per-t curve is blank');
      fs.writeFileSync(path.join(outDir, 'ui-canvas-per-t.png'), curve.png);
      const stored = path.join(workspace, 'checkpoints', 'tiny-e2e.eval.json');
      const file = JSON.parse(fs.readFileSync(stored, 'utf8'));
      log(
        `  ${path.basename(stored)}: ${file.entries.length} entr${file.entries.length === 1 ? 'y' : 'ies'}, newest at ${file.entries[0]?.at}`,
      );
      if (file.entries[0]?.at !== at || file.entries[0].result.bpd.mean !== bpd)
        throw new Error(`${stored} does not hold the shown result first`);
      await frame.$eval('#evalSection', (e) => e.scrollIntoView({ block: 'start' }));
      await sleep(300);
      await shot('11e-inspector-evaluated');
      evaluated = { at, bpd, table };
    });

    await test('the stored evaluation is shown again when the checkpoint is reopened', async () => {
      if (!evaluated) throw new Error('the evaluation test did not store a result');
      const { frame } = await openInInspector('tiny-e2e.safetensors');
      const t = Date.now();
      while ((await frame.$eval('#evalTable', (e) => e.dataset.at || '')) !== evaluated.at) {
        if (Date.now() - t > 30_000)
          throw new Error(`the reopened inspector does not show the stored evaluation (${evaluated.at})`);
        await sleep(250);
      }
      const table = await frame.locator('#evalTable').innerText();
      if (table !== evaluated.table) throw new Error(`reopened:\n${table}\nbefore:\n${evaluated.table}`);
      if ((await canvasPixels(frame, '#perT canvas')).uniform) throw new Error('the reopened per-t curve is blank');
      await frame.$eval('#evalSection', (e) => e.scrollIntoView({ block: 'start' }));
      await sleep(300);
      await shot('11f-inspector-evaluation-reopened');
    });

    /** What the interpolation panel showed, to compare with the panel a reloaded window restores. */
    let interpolation = null;
    await test('two images selected in the explorer: context menu "Interpolate Images" with the default answers draws the strip', async () => {
      // The first quick pick item is ddpm.defaultCheckpoint or the shipped model; make sure it exists.
      const env = process.env.DDPM_E2E_CHECKPOINT && path.resolve(process.env.DDPM_E2E_CHECKPOINT);
      const shipped = path.join(extensionPath, 'models', 'mnist.safetensors');
      if (env ? !fs.existsSync(env) : !fs.existsSync(shipped)) {
        const fallback = path.join(workspace, 'checkpoints', 'tiny-e2e.safetensors');
        log(`  ${env || shipped} does not exist: ddpm.defaultCheckpoint = ${fallback} in the workspace settings`);
        fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
        fs.writeFileSync(
          path.join(workspace, '.vscode', 'settings.json'),
          JSON.stringify({ 'ddpm.defaultCheckpoint': fallback }, null, 2),
        );
        await sleep(1500);
      }
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
      await runCommand(page, 'View: Show Explorer', 20_000);
      const row = (name) => page.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: name }).first();
      if (!(await row('digit-0.png').isVisible())) await row('digits').click();
      const item = page.locator('.monaco-menu .action-item').filter({ hasText: 'Interpolate Images' }).first();
      // A click opens the image in a preview editor, and when that editor settles the explorer reveals (and selects)
      // its file again, which can drop a second selection made in between: wait for the editor, and retry.
      for (let attempt = 1; ; attempt++) {
        await row('digit-0.png').click();
        await tab(page, 'digit-0.png')
          .waitFor({ timeout: 10_000 })
          .catch(() => {});
        await sleep(800);
        await row('digit-1.png').click({ modifiers: ['Control'] });
        await sleep(300);
        const selected = await page.locator('.explorer-folders-view .monaco-list-row.selected').allInnerTexts();
        log(`  explorer selection (attempt ${attempt}): ${JSON.stringify(selected.map((t) => t.trim()))}`);
        if (selected.length === 2) {
          await row('digit-1.png').click({ button: 'right' });
          if (
            await item.waitFor({ timeout: 5_000 }).then(
              () => true,
              () => false,
            )
          )
            break;
          await page.keyboard.press('Escape');
        }
        if (attempt === 3)
          throw new Error(
            `no "Interpolate Images" in the context menu of two selected images after 3 attempts (selection ${JSON.stringify(selected)})`,
          );
      }
      log(`  context menu item: ${JSON.stringify((await item.innerText()).trim())}`);
      await shot('12-explorer-context-menu');
      await item.click();
      const picks = await acceptDefaults(
        page,
        () => tab(page, 'DDPM Interpolation').isVisible(),
        log,
        'the "DDPM Interpolation" tab',
      );
      const summary = picks.map((q) => `${q.title}: ${q.value || q.focused}`);
      log(`  answered ${picks.length} quick input(s): ${JSON.stringify(summary)}`);
      if (picks.length !== 4)
        throw new Error(`expected 4 questions (checkpoint, t, λ count, grid), got ${JSON.stringify(summary)}`);
      if (picks[1].value !== '500' || picks[2].value !== '9' || !/^Only t = 500/.test(picks[3].focused)) {
        throw new Error(`unexpected defaults: ${JSON.stringify(summary)}`);
      }
      const frame = await findFrame(page, 'canvas#strip-0');
      const t = Date.now();
      for (;;) {
        const state = await bodyState(frame);
        if (state === 'done') break;
        await checkErrors(page, frame);
        if (Date.now() - t > 180_000)
          throw new Error(
            `interpolation not done after 180 s (data-state=${state}, status: ${await frame
              .locator('#status')
              .innerText()
              .catch(() => '')})`,
          );
        await sleep(500);
      }
      log(`  interpolation ${await frame.locator('#status').innerText()}`);
      // Progress counts the denoising steps of the whole strip (all λ run as one batch): full when done.
      const [barValue, barMax] = await frame.locator('#bar').evaluate((b) => [b.value, b.max]);
      if (barMax !== 1 || barValue !== 1) throw new Error(`#bar at ${barValue} of ${barMax} after done`);
      let strip;
      for (;;) {
        // the strip is drawn asynchronously (image decode) after its message
        strip = await canvasPixels(frame, 'canvas#strip-0');
        if (!strip.uniform || Date.now() - t > 190_000) break;
        await sleep(200);
      }
      if (strip.uniform) throw new Error(`canvas#strip-0 (${strip.width}×${strip.height}) is blank`);
      fs.writeFileSync(path.join(outDir, 'ui-canvas-strip.png'), strip.png);
      // Drawn 3× larger: input a, 9 λ images, input b = 11 tiles of s px with 2-px gaps: w/3 = 2 + 11·(h/3 − 2).
      log(`  canvas#strip-0 ${strip.width}×${strip.height}`);
      if (strip.width / 3 !== 2 + 11 * (strip.height / 3 - 2))
        throw new Error(`canvas#strip-0 is ${strip.width}×${strip.height}: not 11 tiles (a, 9 λ, b) drawn at 3×`);
      for (const id of ['inputA', 'inputB']) {
        const c = await canvasPixels(frame, `canvas#${id}`);
        if (c.uniform) throw new Error(`canvas#${id} is blank`);
      }
      if (await frame.locator('#strip-1').count()) throw new Error('"Only t = 500" drew more than one strip');
      if (!(await frame.locator('#save').isEnabled())) throw new Error('#save (Save as PNG…) is disabled after done');
      await shot('13-interpolation');
      interpolation = {
        width: strip.width,
        height: strip.height,
        hash: strip.hash,
        status: await frame.locator('#status').innerText(),
        caption: await frame.locator('#caption').innerText(),
      };
    });

    await test('a reloaded window restores the Interpolation panel with its inputs, strip and status', async () => {
      if (!interpolation) throw new Error('the interpolation test did not draw a strip');
      const t = await reloadWindow(page);
      await tab(page, 'DDPM Interpolation').waitFor({ timeout: 60_000 });
      // The panel comes back through its serializer (the extension is activated by onWebviewPanel:ddpm.interpolate)
      // and the webview redraws what it kept with setState.
      const frame = await findFrame(page, 'canvas#strip-0', 60_000);
      let strip;
      for (;;) {
        strip = await canvasPixels(frame, 'canvas#strip-0');
        if (!strip.uniform) break;
        if (Date.now() - t > 90_000)
          throw new Error(`the restored canvas#strip-0 (${strip.width}×${strip.height}) stayed blank`);
        await sleep(250);
      }
      log(
        `  restored canvas#strip-0 ${strip.width}×${strip.height} hash ${strip.hash} (before the reload: ${interpolation.hash})`,
      );
      if (
        strip.width !== interpolation.width ||
        strip.height !== interpolation.height ||
        strip.hash !== interpolation.hash
      ) {
        throw new Error(
          `the restored strip is ${strip.width}×${strip.height} ${strip.hash}, it was ${interpolation.width}×${interpolation.height} ${interpolation.hash}`,
        );
      }
      for (const id of ['inputA', 'inputB']) {
        if ((await canvasPixels(frame, `canvas#${id}`)).uniform) throw new Error(`the restored canvas#${id} is blank`);
      }
      const restored = {
        status: await frame.locator('#status').innerText(),
        caption: await frame.locator('#caption').innerText(),
        state: await bodyState(frame),
      };
      log(`  restored: ${JSON.stringify(restored)}`);
      if (
        restored.status !== interpolation.status ||
        restored.caption !== interpolation.caption ||
        restored.state !== 'done'
      ) {
        throw new Error(
          `restored ${JSON.stringify(restored)}, before the reload ${JSON.stringify({ status: interpolation.status, caption: interpolation.caption, state: 'done' })}`,
        );
      }
      if (!(await frame.locator('#save').isEnabled()))
        throw new Error('#save (Save as PNG…) is disabled in the restored panel');
      await shot('13b-interpolation-restored');
    });

    // ---- Issue 21, rough edges: pickers that work in code-server, the seed, the palette, backend info, disk use ----

    /** Waits for the quick input titled `titleRe` to list a row containing `text` (its items load after it shows);
     * returns the rows. */
    const rowsOnceListed = async (titleRe, text, timeoutMs = 30_000) => {
      const t0 = Date.now();
      for (;;) {
        const q = await describeQuickInput(page);
        if (q && titleRe.test(q.title)) {
          const rows = (await page.locator('.quick-input-list .monaco-list-row').allInnerTexts()).map((r) =>
            r.replace(/\s+/g, ' ').trim(),
          );
          if (rows.some((r) => r.includes(text))) return rows;
        }
        if (Date.now() - t0 > timeoutMs)
          throw new Error(
            `no quick input ${titleRe} listing "${text}" within ${timeoutMs / 1000} s (${JSON.stringify(q)})`,
          );
        await sleep(250);
      }
    };
    /** The titles the command palette lists for `filter` (typed after '>'); the palette is closed again. */
    const paletteRows = async (filter) => {
      await page.keyboard.press('F1');
      const input = page.locator('.quick-input-widget input[type="text"]');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill('>' + filter);
      await sleep(1200);
      const rows = await page.locator('.quick-input-list .monaco-list-row .label-name').allInnerTexts();
      await page.keyboard.press('Escape');
      await sleep(300);
      return rows.map((r) => r.replace(/\s+/g, ' ').trim());
    };
    /** Merges `values` into the workspace settings; returns a function that puts the file back as it was. */
    const workspaceSettings = async (values) => {
      const file = path.join(workspace, '.vscode', 'settings.json');
      const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ ...(before ? JSON.parse(before) : {}), ...values }, null, 2));
      await sleep(1500);
      return async () => {
        if (before === null) fs.rmSync(file, { force: true });
        else fs.writeFileSync(file, before);
        await sleep(1000);
      };
    };
    /** Waits until the webview's body leaves data-state "done" (a new run started), then until it is "done" again. */
    const nextRunDone = async (frame, what, timeoutMs = 180_000) => {
      const t0 = Date.now();
      while ((await bodyState(frame)) === 'done') {
        if (Date.now() - t0 > 20_000) throw new Error(`${what}: no new run started`);
        await sleep(100);
      }
      while ((await bodyState(frame)) !== 'done') {
        await checkErrors(page, frame);
        if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not done within ${timeoutMs / 1000} s`);
        await sleep(300);
      }
    };

    /** What the inpainting view showed, to compare with the view a reloaded window restores. */
    let inpainting = null;
    await test('explorer context menu "Inpaint Image…" on a digit: paint the top half with the mouse, Inpaint, get a result', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
      await runCommand(page, 'View: Show Explorer', 20_000);
      const row = (name) => page.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: name }).first();
      if (!(await row('digit-2.png').isVisible())) await row('digits').click();
      await row('digit-2.png').click();
      await sleep(800);
      const item = page.locator('.monaco-menu .action-item').filter({ hasText: 'Inpaint Image…' }).first();
      for (let attempt = 1; ; attempt++) {
        await row('digit-2.png').click({ button: 'right' });
        if (
          await item.waitFor({ timeout: 5_000 }).then(
            () => true,
            () => false,
          )
        )
          break;
        await page.keyboard.press('Escape');
        if (attempt === 3) throw new Error('no "Inpaint Image…" in the context menu of digit-2.png');
      }
      await shot('15a-explorer-inpaint-menu');
      await item.click();
      // One question: the checkpoint (the default: ddpm.defaultCheckpoint or the shipped MNIST model).
      const picks = await acceptDefaults(
        page,
        () => tab(page, 'DDPM Inpaint').isVisible(),
        log,
        'the "DDPM Inpaint" tab',
      );
      log(`  answered ${JSON.stringify(picks.map((q) => `${q.title}: ${q.focused}`))}`);
      if (picks.length !== 1 || !/checkpoint/.test(picks[0].title))
        throw new Error(`expected one question (the checkpoint), got ${JSON.stringify(picks)}`);
      const frame = await findFrame(page, 'canvas#overlay');
      const overlay = frame.locator('canvas#overlay');
      let box;
      const t = Date.now();
      // The canvas takes the model's size once the view has its setup.
      while (!(box = await overlay.boundingBox()) || box.width < 50) {
        if (Date.now() - t > 30_000) throw new Error('the mask canvas never got its size');
        await sleep(250);
      }
      const size = await overlay.evaluate((c) => c.width);
      log(`  mask canvas ${size}×${size} shown at ${Math.round(box.width)}×${Math.round(box.height)} px`);
      if (await frame.locator('#run').isEnabled()) throw new Error('#run is enabled before anything is painted');
      // Paint the top half with the mouse: a brush of 3 model pixels, zig-zag strokes across the rows 0…13.
      await frame.locator('#brush').evaluate((b) => {
        b.value = '3';
        b.dispatchEvent(new Event('input'));
      });
      const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
      await page.mouse.move(...at(0.02, 0.04));
      await page.mouse.down();
      for (let k = 0; k <= 8; k++) {
        await page.mouse.move(...at(k % 2 ? 0.98 : 0.02, 0.04 + k * 0.055), { steps: 12 });
        await page.mouse.move(...at(k % 2 ? 0.98 : 0.02, 0.04 + (k + 1) * 0.055), { steps: 4 });
      }
      await page.mouse.up();
      const count = Number(await frame.locator('#maskCount').getAttribute('data-count'));
      log(`  painted ${count} of ${size * size} pixels: ${await frame.locator('#maskCount').innerText()}`);
      if (!(count > size * size * 0.3 && count < size * size * 0.75))
        throw new Error(`painted ${count} of ${size * size} pixels: not about the top half`);
      const mask = await canvasPixels(frame, 'canvas#overlay');
      if (mask.uniform) throw new Error('the mask overlay is blank after painting');
      // A short run: one image, RePaint on 10 timesteps, jumps of 2, r = 2.
      for (const [id, v] of [
        ['n', '1'],
        ['steps', '10'],
        ['jumps', '2'],
        ['resample', '2'],
      ])
        await frame.locator(`#${id}`).fill(v);
      await shot('15b-inpaint-painted');
      await frame.locator('#run').click();
      const t2 = Date.now();
      let sawRunning = false;
      for (;;) {
        const state = await bodyState(frame);
        if (state === 'running') sawRunning = true;
        if (state === 'done') break;
        await checkErrors(page, frame);
        if (Date.now() - t2 > 180_000)
          throw new Error(
            `inpainting not done after 180 s (data-state=${state}, ${await frame.locator('#status').innerText()})`,
          );
        await sleep(300);
      }
      log(`  inpainting ${await frame.locator('#status').innerText()} (saw running: ${sawRunning})`);
      let result;
      for (;;) {
        result = await canvasPixels(frame, 'canvas#result');
        if (!result.uniform || Date.now() - t2 > 190_000) break;
        await sleep(200);
      }
      if (result.uniform) throw new Error(`canvas#result (${result.width}×${result.height}) is blank`);
      for (const id of ['xt', 'x0']) {
        if ((await canvasPixels(frame, `canvas#${id}`)).uniform) throw new Error(`canvas#${id} is blank`);
      }
      fs.writeFileSync(path.join(outDir, 'ui-canvas-inpainting.png'), result.png);
      if (!(await frame.locator('#save').isEnabled())) throw new Error('#save is disabled after done');
      await shot('15c-inpainting-done');
      inpainting = { count, hash: result.hash, status: await frame.locator('#status').innerText() };
    });

    await test('a reloaded window restores the Inpaint view with its mask and result; "Image to Image…" with the strength slider', async () => {
      if (!inpainting) throw new Error('the inpainting test did not finish');
      const t = await reloadWindow(page);
      await tab(page, 'DDPM Inpaint').waitFor({ timeout: 60_000 });
      const frame = await findFrame(page, 'canvas#overlay', 60_000);
      let result;
      for (;;) {
        result = await canvasPixels(frame, 'canvas#result');
        if (!result.uniform) break;
        if (Date.now() - t > 90_000) throw new Error('the restored canvas#result stayed blank');
        await sleep(250);
      }
      const count = Number(await frame.locator('#maskCount').getAttribute('data-count'));
      log(`  restored: mask ${count} pixels, result ${result.hash} (before: ${inpainting.count}, ${inpainting.hash})`);
      if (count !== inpainting.count || result.hash !== inpainting.hash)
        throw new Error(`restored mask ${count} / result ${result.hash}, before ${JSON.stringify(inpainting)}`);
      if (!(await frame.locator('#run').isEnabled())) throw new Error('#run is disabled in the restored view');
      await shot('15d-inpaint-restored');

      // Image to Image from the palette on the same digit: the image's dialog is skipped through the explorer's
      // context menu, as a user would.
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'View: Show Explorer', 20_000);
      const row = (name) => page.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: name }).first();
      if (!(await row('digit-3.png').isVisible())) await row('digits').click();
      const item = page.locator('.monaco-menu .action-item').filter({ hasText: 'Image to Image…' }).first();
      // Right after a reload the menu has been seen to take a click as a hover (the menu stays open, nothing runs):
      // press Enter on the item then, and if still nothing asks or opens, open the menu again.
      const started = () =>
        tab(page, 'DDPM Image to Image')
          .isVisible()
          .then(async (v) => v || (await describeQuickInput(page)) !== null);
      for (let attempt = 1; ; attempt++) {
        await row('digit-3.png').click({ button: 'right' });
        const shown = await item.waitFor({ timeout: 5_000 }).then(
          () => true,
          () => false,
        );
        if (shown) {
          await sleep(400);
          await item.click();
          await sleep(800);
          if (await item.isVisible().catch(() => false)) await page.keyboard.press('Enter');
          const t4 = Date.now();
          while (!(await started()) && Date.now() - t4 < 5_000) await sleep(250);
          if (await started()) break;
        }
        await page.keyboard.press('Escape');
        if (attempt === 3) throw new Error('"Image to Image…" in the context menu of digit-3.png opened nothing');
        log(`  the context menu's "Image to Image…" did nothing (attempt ${attempt}): again`);
      }
      await acceptDefaults(page, () => tab(page, 'DDPM Image to Image').isVisible(), log, 'the tab');
      const f2 = await findFrame(page, 'input#strength', 60_000, async (f) =>
        f.evaluate(() => document.body.dataset.mode === 'img2img').catch(() => false),
      );
      if (await f2.locator('#overlay').isVisible()) throw new Error('the mask canvas shows in Image to Image');
      await f2.locator('#strength').evaluate((s) => {
        s.value = '0.3';
        s.dispatchEvent(new Event('input'));
      });
      if ((await f2.locator('#strengthValue').innerText()) !== '0.30')
        throw new Error('the strength label did not follow');
      await f2.locator('#n').fill('4');
      await f2.locator('#ddimSteps').fill('10');
      await f2.locator('#run').click();
      const t3 = Date.now();
      while ((await bodyState(f2)) !== 'done') {
        await checkErrors(page, f2);
        if (Date.now() - t3 > 120_000)
          throw new Error(`image to image not done: ${await f2.locator('#status').innerText()}`);
        await sleep(300);
      }
      const out = await canvasPixels(f2, 'canvas#result');
      if (out.uniform) throw new Error('the image-to-image result is blank');
      log(
        `  image to image: ${await f2.locator('#status').innerText()}, caption ${await f2.locator('#caption').innerText()}`,
      );
      if (!/SDEdit, strength 0\.3/.test(await f2.locator('#caption').innerText()))
        throw new Error('the caption does not give the strength');
      await shot('16-img2img');
    });

    await test('DDPM: Interpolate Images from the palette in code-server: both images picked from the workspace in quick picks', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
      await runCommand(page, 'DDPM: Interpolate Images');
      const rowsA = await rowsOnceListed(/first image \(A\)$/, 'digit-7.png');
      log(`  image A rows: ${JSON.stringify(rowsA)}`);
      for (let i = 0; i < 8; i++)
        if (!rowsA.some((r) => new RegExp(`^digit-${i}\\.png\\s*digits$`).test(r)))
          throw new Error(`the first pick does not list digits/digit-${i}.png: ${JSON.stringify(rowsA)}`);
      await shot('15a-interpolate-pick-a');
      // Browse… (the file dialog) is one entry away.
      await page.locator('.quick-input-widget input[type="text"]').fill('Browse');
      await sleep(500);
      const browse = await describeQuickInput(page);
      if (!/Browse…/.test(browse.focused)) throw new Error(`typing "Browse" focuses ${JSON.stringify(browse.focused)}`);
      await answerQuickInput(page, /first image \(A\)$/, { text: 'digit-2', expectFocused: /^digit-2\.png/, log });
      const rowsB = await rowsOnceListed(/second image \(B\)$/, 'digit-7.png');
      if (rowsB.some((r) => r.startsWith('digit-2.png')))
        throw new Error('the second pick offers the first image again');
      const b = await answerQuickInput(page, /second image \(B\)$/, {
        text: 'digit-5',
        expectFocused: /^digit-5\.png/,
        log,
      });
      log(`  image B pick: ${JSON.stringify(b.placeholder)}`);
      if (!/digit-2\.png/.test(b.placeholder)) throw new Error(`the B pick does not name A: ${JSON.stringify(b)}`);
      const rest = await acceptDefaults(
        page,
        () => tab(page, 'DDPM Interpolation: digit-2.png ↔ digit-5.png').isVisible(),
        log,
        'the "DDPM Interpolation: digit-2.png ↔ digit-5.png" tab',
      );
      if (rest.length !== 4)
        throw new Error(`expected checkpoint, t, λ count and grid after the images, got ${JSON.stringify(rest)}`);
      const frame = await findFrame(page, 'canvas#strip-0');
      const t0 = Date.now();
      while ((await bodyState(frame)) !== 'done') {
        await checkErrors(page, frame);
        if (Date.now() - t0 > 180_000) throw new Error('the interpolation of the picked images did not finish');
        await sleep(500);
      }
      let strip;
      while ((strip = await canvasPixels(frame, 'canvas#strip-0')).uniform) {
        if (Date.now() - t0 > 190_000) throw new Error('canvas#strip-0 stayed blank');
        await sleep(200);
      }
      log(`  canvas#strip-0 ${strip.width}×${strip.height}`);
      for (const id of ['inputA', 'inputB'])
        if ((await canvasPixels(frame, `canvas#${id}`)).uniform) throw new Error(`canvas#${id} is blank`);
      await shot('15b-interpolate-picked');
    });

    await test('the explorer offers Interpolate Images for two selected images only: not one image, not a text file', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'View: Show Explorer', 20_000);
      const row = (name) => page.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: name }).first();
      if (!(await row('digit-0.png').isVisible())) await row('digits').click();
      const menuItems = async (target) => {
        await row(target).click({ button: 'right' });
        const items = page.locator('.monaco-menu .action-item .action-label');
        await items.first().waitFor({ timeout: 10_000 });
        await sleep(300);
        const labels = (await items.allInnerTexts()).map((t) => t.trim()).filter(Boolean);
        return labels;
      };
      // One image.
      await row('digit-3.png').click();
      await tab(page, 'digit-3.png')
        .waitFor({ timeout: 10_000 })
        .catch(() => {});
      await sleep(800);
      const one = await menuItems('digit-3.png');
      log(`  one image: ${JSON.stringify(one)}`);
      await shot('16a-explorer-menu-one-image');
      await page.keyboard.press('Escape');
      if (!one.length || one.includes('Interpolate Images'))
        throw new Error(`one image selected: the menu is ${JSON.stringify(one)}`);
      // An image and the workspace's README.md, right-clicked on README.md.
      let mixed;
      for (let attempt = 1; ; attempt++) {
        await row('digit-3.png').click();
        await sleep(800);
        await row('README.md').click({ modifiers: ['Control'] });
        await sleep(300);
        const selected = await page.locator('.explorer-folders-view .monaco-list-row.selected').allInnerTexts();
        if (selected.length === 2) {
          mixed = await menuItems('README.md');
          break;
        }
        if (attempt === 3) throw new Error(`could not select an image and README.md: ${JSON.stringify(selected)}`);
      }
      log(`  an image and README.md: ${JSON.stringify(mixed)}`);
      await shot('16b-explorer-menu-image-and-text');
      await page.keyboard.press('Escape');
      if (!mixed.length || mixed.includes('Interpolate Images'))
        throw new Error(`an image and a text file selected: the menu is ${JSON.stringify(mixed)}`);
    });

    await test('DDPM: Sample: ddpm.numSamples first, a typed count taken; the view shows the seed; Sample again repeats it, New seed changes it', async () => {
      const restore = await workspaceSettings({ 'ddpm.numSamples': 9 });
      try {
        await runCommand(page, 'View: Close All Editors', 20_000);
        await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
        // The workbench notices the new settings after a while: until then the pick starts with 16.
        let count;
        for (let attempt = 1; ; attempt++) {
          await runCommand(page, 'DDPM: Sample');
          await answerQuickInput(page, /checkpoint$/, { log });
          try {
            count = await answerQuickInput(page, /number of images$/, {
              expectFocused: /^7$/,
              text: '7',
              log,
              onShown: async () => {
                const q = await describeQuickInput(page);
                if (!/^9/.test(q?.focused ?? '')) throw new Error(`the count pick starts at ${q?.focused}`);
                await shot('17a-sample-count-pick');
              },
            });
            break;
          } catch (e) {
            if (attempt === 8) throw e;
            log(`  attempt ${attempt}: ${e.message.split('\n')[0]}`);
            await page.keyboard.press('Escape');
            await sleep(2000);
          }
        }
        log(`  count pick rows: ${JSON.stringify(count.rows)}`);
        if (!/^9\s*default \(ddpm\.numSamples\)$/.test(count.rows[0]))
          throw new Error(`the first count is not the setting's: ${JSON.stringify(count.rows)}`);
        // answerQuickInput typed 7 (not in the list) and accepted it: the sampler and the seed follow.
        await answerQuickInput(page, /sampler$/, { text: '10 steps', expectFocused: /^DDIM, 10 steps/, log });
        await answerQuickInput(page, /seed$/, { text: '1234', log });
        await tab(page, 'DDPM Trajectory').waitFor({ timeout: 60_000 });
        const frame = await findFrame(page, 'canvas#grid', 60_000, (f) =>
          f.$eval('#caption', (e) => (e.textContent || '').includes('seed 1234')).catch(() => false),
        );
        const t0 = Date.now();
        while ((await bodyState(frame)) !== 'done') {
          await checkErrors(page, frame);
          if (Date.now() - t0 > 180_000) throw new Error('sampling 7 images did not finish');
          await sleep(300);
        }
        const view = async () => ({
          caption: await frame.locator('#caption').innerText(),
          seed: await frame.$eval('#seed', (e) => e.value),
          again: await frame.locator('#again').innerText(),
          grid: (await canvasPixels(frame, 'canvas#grid')).hash,
        });
        const first = await view();
        log(`  first run: ${JSON.stringify(first)}`);
        if (!/^7 samples · DDIM 10 · seed 1234 · /.test(first.caption))
          throw new Error(`caption ${JSON.stringify(first.caption)}`);
        if (first.seed !== '1234' || first.again !== 'Sample again (same seed 1234)')
          throw new Error(`seed field / button: ${JSON.stringify(first)}`);
        await shot('17b-sample-seed');
        await frame.click('#again');
        await nextRunDone(frame, 'Sample again');
        const again = await view();
        log(`  again: ${JSON.stringify(again)}`);
        assert.deepStrictEqual(again, first, 'the same seed gives the same caption and the same grid');
        await frame.click('#newSeed');
        await nextRunDone(frame, 'New seed');
        const fresh = await view();
        log(`  new seed: ${JSON.stringify(fresh)}`);
        if (fresh.seed === '1234' || !/^\d+$/.test(fresh.seed)) throw new Error(`new seed ${fresh.seed}`);
        if (!fresh.caption.includes(` · seed ${fresh.seed} · `)) throw new Error(`caption ${fresh.caption}`);
        if (fresh.again !== `Sample again (same seed ${fresh.seed})`) throw new Error(`button ${fresh.again}`);
        if (fresh.grid === first.grid) throw new Error('a new seed drew the same grid');
        // A seed typed in the field: the button says it is another one.
        await frame.fill('#seed', '77');
        if ((await frame.locator('#again').innerText()) !== 'Sample again (seed 77)')
          throw new Error(`after typing 77 the button says ${await frame.locator('#again').innerText()}`);
        await frame.fill('#seed', 'x1');
        if (!(await frame.locator('#again').isDisabled()))
          throw new Error('"x1" is not a seed, yet Sample again is enabled');
        await shot('17c-sample-seed-typed');
      } finally {
        await restore();
      }
    });

    await test('DDPM: Show Backend Info from the palette opens a readable Markdown preview', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'DDPM: Show Backend Info');
      await tab(page, 'Preview DDPM Backend Info.md').waitFor({ timeout: 60_000 });
      const frame = await findFrame(page, 'h1', 60_000, (f) =>
        f.$eval('body', (b) => b.innerText.includes('How it was chosen')).catch(() => false),
      );
      const text = await frame.$eval('body', (b) => b.innerText);
      log(`  preview text:\n${text}`);
      for (const want of ['DDPM Studio — compute backend', 'wasm', 'CPU cores', 'passed over', 'Not installed'])
        if (!text.includes(want)) throw new Error(`the preview does not say "${want}"`);
      if ((await frame.$$('table tr')).length < 8) throw new Error('the preview has no table of facts');
      await shot('18-backend-info');
    });

    await test('DDPM: Train with the cifar10 preset shows its checkpoints’ disk use and asks first; Cancel starts nothing', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
      const runs = path.join(workspace, 'runs');
      const before = fs.existsSync(runs) ? fs.readdirSync(runs) : [];
      await runCommand(page, 'DDPM: Train');
      await answerQuickInput(page, /data$/, { expectFocused: /^Bundled MNIST digits/, log });
      await answerQuickInput(page, /model preset$/, { text: 'cifar10', expectFocused: /^cifar10/, log });
      await answerQuickInput(page, /steps$/, { log });
      const out = await answerQuickInput(page, /output folder$/, { log });
      log(`  output folder prompt: ${out.prompt}`);
      if (!/— 4 checkpoints × 57\d MB = 2\.2\d GB \(latest \+ 3 kept\)/.test(out.prompt))
        throw new Error(`the output folder prompt does not give the checkpoints' size: ${JSON.stringify(out.prompt)}`);
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ timeout: 20_000 });
      const text = (await dialog.innerText()).replace(/\s+/g, ' ');
      log(`  dialog: ${text}`);
      await shot('19-train-disk-confirm');
      if (!/writes up to 2\.2\d GB of checkpoints/.test(text)) throw new Error(`dialog: ${text}`);
      if (!/Keep 1 checkpoint \(1\.1\d GB\)/.test(text)) throw new Error(`no "Keep 1 checkpoint" in: ${text}`);
      await dialog.locator('.monaco-button').filter({ hasText: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
      await sleep(2000);
      if (await tab(page, 'DDPM Training').isVisible()) throw new Error('a Training view opened after Cancel');
      const after = fs.existsSync(runs) ? fs.readdirSync(runs) : [];
      if (after.some((d) => d.startsWith('cifar10-') && !before.includes(d)))
        throw new Error(`Cancel created a run folder: ${JSON.stringify(after)}`);
    });

    /** Preferences: Color Theme, then the theme named (its pick has a placeholder, no title). */
    const chooseTheme = async (name) => {
      await runCommand(page, 'Preferences: Color Theme', 20_000);
      const t0 = Date.now();
      let q;
      while (!(q = await describeQuickInput(page)) || !/color theme/i.test(q.placeholder)) {
        if (Date.now() - t0 > 20_000) throw new Error(`no color theme pick (${JSON.stringify(q)})`);
        await sleep(250);
      }
      await page.locator('.quick-input-widget input[type="text"]').fill(name);
      await sleep(700);
      q = await describeQuickInput(page);
      if (!q.focused.includes(name)) throw new Error(`typing ${name} focuses ${JSON.stringify(q.focused)}`);
      await page.keyboard.press('Enter');
      await sleep(1000);
    };

    await test('a run on a folder picked in the workspace: the loss range fits the data, the plots follow the theme, Stop draws a last preview', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'Notifications: Clear All Notifications', 20_000);
      await runCommand(page, 'DDPM: Train');
      await answerQuickInput(page, /data$/, { text: 'Folder of images', expectFocused: /^Folder of images/, log });
      const folders = await rowsOnceListed(/Folder of images$/, 'digits');
      log(`  folder rows: ${JSON.stringify(folders)}`);
      if (!folders.some((r) => /^digits\s*8 images$/.test(r)))
        throw new Error(`no "digits 8 images" row: ${JSON.stringify(folders)}`);
      await answerQuickInput(page, /Folder of images$/, { text: 'digits', expectFocused: /^digits/, log });
      await answerQuickInput(page, /model preset$/, { text: 'tiny', expectFocused: /^tiny/, log });
      await answerQuickInput(page, /steps$/, { text: '100000', log });
      const out = await answerQuickInput(page, /output folder$/, { log });
      log(`  output folder prompt: ${out.prompt}`);
      await tab(page, 'DDPM Training').waitFor({ timeout: 60_000 });
      const frame = await findFrame(page, '#loss canvas', 60_000);
      const range = async () =>
        frame.$eval('#loss', (e) => ({ min: Number(e.dataset.yMin), max: Number(e.dataset.yMax) }));
      const t0 = Date.now();
      let r;
      let stats;
      for (;;) {
        r = await range();
        stats = await frame.locator('#stats').innerText();
        const step = Number(/^step (\d+)/.exec(stats)?.[1] ?? 0);
        if (step >= 30 && r.max > 0) break;
        await checkErrors(page, frame);
        if (Date.now() - t0 > 180_000) throw new Error(`the run did not reach step 30 (${stats})`);
        await sleep(500);
      }
      // The y range is the data's (loss and its smoothing) with 8 % margins in log space, not whole decades.
      const ratio = Math.log10(r.max / r.min);
      log(`  y range [${r.min}, ${r.max}] (${ratio.toFixed(3)} decades); ${stats}`);
      if (Number.isInteger(Math.log10(r.min)) && Number.isInteger(Math.log10(r.max)))
        throw new Error(`the y range [${r.min}, ${r.max}] is snapped to decades`);
      const loss = Number(/loss (\d+\.\d+)/.exec(stats)[1]);
      const at = Math.log(loss / r.min) / Math.log(r.max / r.min);
      if (!(at > 0.03 && at < 0.97)) throw new Error(`the latest loss ${loss} sits at ${at.toFixed(3)} of the axis`);
      const colorsBefore = await frame.evaluate(() => document.body.dataset.plotColors);
      const canvasBefore = (await canvasPixels(frame, '#loss canvas')).hash;
      await shot('20a-training-dark');
      // A light theme: the plots are made again in its colours.
      await chooseTheme('Light Modern');
      const t1 = Date.now();
      let colorsAfter;
      while ((colorsAfter = await frame.evaluate(() => document.body.dataset.plotColors)) === colorsBefore) {
        if (Date.now() - t1 > 20_000)
          throw new Error(`the plots kept their colours (${colorsBefore}) in a light theme`);
        await sleep(250);
      }
      log(`  plot colours: ${colorsBefore} -> ${colorsAfter}`);
      await sleep(1500);
      await shot('20b-training-light');
      const canvasAfter = (await canvasPixels(frame, '#loss canvas')).hash;
      if (canvasAfter === canvasBefore) throw new Error('the loss canvas did not change with the theme');
      await chooseTheme('Dark Modern');
      // Stop: the run saves, then draws a preview of its last step (sampleEvery is 500) before it says it stopped.
      await frame.click('#stop');
      const t2 = Date.now();
      while ((await bodyState(frame)) !== 'stopped') {
        await checkErrors(page, frame);
        if (Date.now() - t2 > 120_000) throw new Error(`not stopped 120 s after Stop (${await bodyState(frame)})`);
        await sleep(300);
      }
      const final = await frame.locator('#stats').innerText();
      const caption = await frame.locator('#previewCaption').innerText();
      log(`  after Stop: ${caption}; ${final}`);
      const stoppedAt = Number(/stopped at step (\d+)/.exec(final)?.[1]);
      if (!(stoppedAt >= 30)) throw new Error(`#stats after Stop: ${JSON.stringify(final)}`);
      if (caption !== `samples at step ${stoppedAt}`)
        throw new Error(`the preview caption is ${JSON.stringify(caption)}, the run stopped at step ${stoppedAt}`);
      while ((await canvasPixels(frame, 'canvas#preview')).uniform) {
        if (Date.now() - t2 > 130_000) throw new Error('the final preview is blank');
        await sleep(250);
      }
      await frame.$eval('#preview', (e) => e.scrollIntoView({ block: 'center' }));
      await shot('20c-training-stopped-preview');
    });

    await test('the palette lists the native backend commands that apply here; Escape leaves everything as it was', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      // This machine: an NVIDIA driver or not (what the extension checks), no native backend installed yet.
      const gpu = ['/proc/driver/nvidia/version', '/dev/nvidiactl', '/dev/nvidia0'].some((f) => fs.existsSync(f));
      const install = await paletteRows('DDPM: Install');
      const remove = await paletteRows('DDPM: Remove Native Backend');
      log(`  "DDPM: Install": ${JSON.stringify(install)}; "DDPM: Remove Native Backend": ${JSON.stringify(remove)}`);
      const want = gpu ? 'DDPM: Install CUDA Backend' : 'DDPM: Install Native CPU Backend';
      const not = gpu ? 'DDPM: Install Native CPU Backend' : 'DDPM: Install CUDA Backend';
      if (!install.includes(want)) throw new Error(`the palette does not offer ${want}: ${JSON.stringify(install)}`);
      if (install.includes(not)) throw new Error(`the palette offers ${not} here: ${JSON.stringify(install)}`);
      if (remove.includes('DDPM: Remove Native Backend'))
        throw new Error('the palette offers Remove Native Backend with none installed');
      for (const hidden of ['DDPM: Stop', 'DDPM: Sidecar Info (for scripts and tests)'])
        if ((await paletteRows(hidden)).includes(hidden)) throw new Error(`the palette offers ${hidden}`);
      await runCommand(page, want);
      const rows = page.locator('.quick-input-list .monaco-list-row');
      await rows.first().waitFor({ timeout: 20_000 });
      await sleep(500);
      const texts = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
      log(`  quick pick: ${JSON.stringify(texts)}`);
      if (!texts.some((t) => /Native CPU.*@tensorflow\/tfjs-node@4\.22\.0/.test(t)))
        throw new Error('no "Native CPU" row with @tensorflow/tfjs-node@4.22.0');
      const cuda = texts.some((t) => /CUDA \(NVIDIA GPU\).*@tensorflow\/tfjs-node-gpu@4\.22\.0/.test(t));
      if (cuda !== gpu) throw new Error(`the CUDA row is ${cuda ? '' : 'not '}offered (NVIDIA driver: ${gpu})`);
      await shot('14-install-native-backend');
      await page.keyboard.press('Escape');
      await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
      if (
        await page
          .locator('.notifications-toasts')
          .filter({ hasText: /DDPM: .*(installed|Could not)/ })
          .count()
      )
        throw new Error('a notification appeared after Escape');
    });
  } finally {
    await context.close().catch(() => {});
    consoleLog.end();
  }
  return results;
}
