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
      await page.keyboard.press('Enter');
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
        await page.evaluate(() => {
          window.__ddpmBeforeReload = true;
        });
        await runCommand(page, 'Developer: Reload Window', 20_000);
        const r0 = Date.now();
        while (await page.evaluate(() => window.__ddpmBeforeReload === true).catch(() => true)) {
          if (Date.now() - r0 > 30_000) throw new Error('the window did not reload');
          await sleep(250);
        }
        await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
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

    await test('DDPM: Install CUDA Backend offers the CUDA and the native CPU package; Escape leaves everything as it was', async () => {
      await runCommand(page, 'View: Close All Editors', 20_000);
      await runCommand(page, 'DDPM: Install CUDA Backend');
      const rows = page.locator('.quick-input-list .monaco-list-row');
      await rows.filter({ hasText: 'CUDA (NVIDIA GPU)' }).first().waitFor({ timeout: 20_000 });
      const texts = await rows.allInnerTexts();
      log(`  quick pick: ${JSON.stringify(texts.map((t) => t.replace(/\s+/g, ' ')))}`);
      if (!texts.some((t) => /CUDA \(NVIDIA GPU\)[\s\S]*@tensorflow\/tfjs-node-gpu@4\.22\.0/.test(t)))
        throw new Error('no "CUDA (NVIDIA GPU)" row with @tensorflow/tfjs-node-gpu@4.22.0');
      if (!texts.some((t) => /Native CPU[\s\S]*@tensorflow\/tfjs-node@4\.22\.0/.test(t)))
        throw new Error('no "Native CPU" row with @tensorflow/tfjs-node@4.22.0');
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
