#!/usr/bin/env node
// End-to-end tests of the extension inside real VS Code (code-server 4.100.3 = VS Code 1.100.3), offline.
//
//   npm run build && npm run test:e2e          (test:e2e runs test/e2e/setup.sh first)
//   node test/e2e/run.mjs [--only ext|ui] [--grep REGEX] [--keep] [--vsix FILE]
//
// --vsix FILE: test the packaged extension instead of the repository: FILE is installed with
// `code-server --install-extension` into a fresh extensions folder and that installed copy is the extension under test.
//
// For each suite a code-server is started on a free port with a fresh profile in a temporary folder, and a temporary
// workspace with digits/ (8 fixture PNGs, white strokes on black, 28×28) is opened in headless Chromium:
//   (a) ext: the mocha suite test/e2e/suite/index.js runs inside the extension host (workbench URL with
//       payload=[[extensionDevelopmentPath, <repo>], [extensionTestsPath, <suite>]]); exit code = result;
//   (b) ui:  test/e2e/ui.mjs drives the workbench (command palette, quick picks, webviews) with playwright-core,
//       the extension loaded the same way (extensionDevelopmentPath only).
// Prints TAP-style `# pass N` / `# fail N` lines, writes screenshots and logs to test-results/e2e/, exits 1 on failure.
// Environment: DDPM_E2E_HOME (where setup.sh installed code-server), CHROMIUM (default /usr/bin/chromium),
// DDPM_E2E_CHECKPOINT (development aid while models/mnist.safetensors does not exist: both suites sample from this
// checkpoint instead; the UI suite through the ddpm.defaultCheckpoint setting).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import sharp from 'sharp';
import { launchBrowser } from './browser.mjs';
import { runUiSuite } from './ui.mjs';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const E2E_HOME = process.env.DDPM_E2E_HOME || path.join(REPO, '.cache', 'vscode-e2e');
const CODE_SERVER = path.join(E2E_HOME, 'code-server', 'node_modules', '.bin', 'code-server');
const RESULTS = path.join(REPO, 'test-results', 'e2e');
const EXT_SUITE_TIMEOUT_MS = 300_000;
const UI_SUITE_TIMEOUT_MS = 360_000;

const { values: opts } = util.parseArgs({
  options: {
    only: { type: 'string' },
    grep: { type: 'string' },
    keep: { type: 'boolean', default: false },
    vsix: { type: 'string' },
  },
});
const T0 = Date.now();
const log = (...a) => console.log(`[e2e ${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a);

// ---------------------------------------------------------------------------------------------------------------------
// fixtures

/** Seven-segment strokes (x0, y0, x1, y1 in a 28×28 image) for each digit. */
const SEGMENTS = {
  a: [8, 5, 19, 5],
  b: [19, 5, 19, 13],
  c: [19, 14, 19, 22],
  d: [8, 22, 19, 22],
  e: [8, 14, 8, 22],
  f: [8, 5, 8, 13],
  g: [8, 13.5, 19, 13.5],
};
const DIGITS = ['abcdef', 'bc', 'abged', 'abgcd', 'fgbc', 'afgcd', 'afgedc', 'abc'];

/** A 28×28 grayscale PNG of `digit` drawn as thick, slightly slanted, anti-aliased white strokes on black. */
async function digitPng(digit) {
  const px = new Uint8Array(28 * 28);
  for (const s of DIGITS[digit]) {
    const [x0, y0, x1, y1] = SEGMENTS[s];
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const sx = x + (y - 14) * 0.15; // slant
        const dx = x1 - x0,
          dy = y1 - y0;
        const t = Math.max(0, Math.min(1, ((sx - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)));
        const d = Math.hypot(sx - (x0 + t * dx), y - (y0 + t * dy));
        px[y * 28 + x] = Math.max(px[y * 28 + x], Math.round(255 * Math.max(0, Math.min(1, 2.2 - d))));
      }
    }
  }
  return sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** A small safetensors file not written by DDPM Studio (no ddpm metadata): two F32 tensors, 9 values. */
function foreignSafetensors() {
  const header = {
    __metadata__: { source: 'ddpm-studio e2e fixture' },
    weight: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    bias: { dtype: 'F32', shape: [3], data_offsets: [24, 36] },
  };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.from(new Float32Array([0.5, -1, 2, 0.25, 3, -0.75, 0.1, 0.2, 0.3]).buffer);
  return Buffer.concat([len, Buffer.from(json), data]);
}

/**
 * Trains the `tiny` preset with the command line into outDir (no intermediate checkpoints, no previews); returns the
 * checkpoint's path. `args`: the data and the steps, and whatever else the fixture needs.
 */
function trainTinyCheckpoint(outDir, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, 'dist', 'ddpm.js'),
        'train',
        '--preset',
        'tiny',
        '--save-every',
        '0',
        '--sample-every',
        '0',
        '--out',
        outDir,
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d) => {
      err = (err + d).slice(-4000);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const latest = path.join(outDir, 'latest.safetensors');
      if (code === 0 && fs.existsSync(latest)) resolve(latest);
      else reject(new Error(`ddpm train ${args.join(' ')} (fixture) exited with ${code}:\n${err}`));
    });
  });
}

/**
 * The workspace both suites open:
 *   digits/digit-0..7.png                 fixture images (28×28, white on black)
 *   checkpoints/tiny-e2e.safetensors      a `tiny` training checkpoint (20 steps on digits/), for the inspector tests
 *   checkpoints/conditional-e2e.safetensors  a class-conditional `tiny` checkpoint (4 steps on the bundled MNIST
 *                                         digits, 10 classes), for sampling a class
 *   checkpoints/corrupt.safetensors       100 random bytes (the inspector must show an error)
 *   checkpoints/foreign.safetensors       a valid safetensors file without DDPM Studio metadata (the inspector's note)
 */
async function makeWorkspace(dir, runDir) {
  fs.mkdirSync(path.join(dir, 'digits'), { recursive: true });
  for (let i = 0; i < DIGITS.length; i++)
    fs.writeFileSync(path.join(dir, 'digits', `digit-${i}.png`), await digitPng(i));
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    '# DDPM Studio e2e workspace\n\ndigits/: fixture images for folder: training.\n',
  );
  const ckpts = path.join(dir, 'checkpoints');
  fs.mkdirSync(ckpts, { recursive: true });
  let t = Date.now();
  fs.copyFileSync(
    await trainTinyCheckpoint(path.join(runDir, 'tiny-fixture'), [
      '--data',
      `folder:${path.join(dir, 'digits')}`,
      '--steps',
      '20',
      '--batch',
      '4',
    ]),
    path.join(ckpts, 'tiny-e2e.safetensors'),
  );
  log(`fixture checkpoints/tiny-e2e.safetensors trained in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  t = Date.now();
  fs.copyFileSync(
    await trainTinyCheckpoint(path.join(runDir, 'conditional-fixture'), [
      '--data',
      'mnist',
      '--conditional',
      '--steps',
      '4',
      '--batch',
      '4',
    ]),
    path.join(ckpts, 'conditional-e2e.safetensors'),
  );
  log(`fixture checkpoints/conditional-e2e.safetensors trained in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  fs.writeFileSync(path.join(ckpts, 'corrupt.safetensors'), crypto.randomBytes(100));
  fs.writeFileSync(path.join(ckpts, 'foreign.safetensors'), foreignSafetensors());
}

// ---------------------------------------------------------------------------------------------------------------------
// code-server

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function healthy(port) {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (r) => {
        r.resume();
        resolve(r.statusCode === 200);
      })
      .on('error', () => resolve(false))
      .on('timeout', function () {
        this.destroy();
        resolve(false);
      });
  });
}

const SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'security.workspace.trust.enabled': false,
  'window.restoreWindows': 'none',
  'git.enabled': false,
  'chat.commandCenter.enabled': false,
  // The held-out loss of DDPM: Train's runs every 10 steps (off by default), so that the Training view's plot of it is
  // exercised.
  'ddpm.train.evalEvery': 10,
  // Development aid: with DDPM_E2E_CHECKPOINT the sampling defaults use that checkpoint instead of the shipped one.
  ...(process.env.DDPM_E2E_CHECKPOINT
    ? { 'ddpm.defaultCheckpoint': path.resolve(process.env.DDPM_E2E_CHECKPOINT) }
    : {}),
};

/** Starts code-server in its own process group with a fresh profile under runDir; resolves once /healthz answers. */
async function startCodeServer(runDir, env) {
  const port = await freePort();
  const userData = path.join(runDir, 'user-data');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(path.join(runDir, 'extensions'), { recursive: true });
  fs.mkdirSync(path.join(runDir, 'home'), { recursive: true });
  fs.mkdirSync(path.join(runDir, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(SETTINGS, null, 2));
  const config = path.join(runDir, 'config.yaml');
  fs.writeFileSync(config, ''); // an explicit empty config: code-server then writes nothing to ~/.config
  const logFile = path.join(runDir, 'code-server.log');
  const out = fs.openSync(logFile, 'w');
  const home = path.join(runDir, 'home');
  const child = spawn(
    CODE_SERVER,
    [
      '--config',
      config,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--user-data-dir',
      userData,
      '--extensions-dir',
      path.join(runDir, 'extensions'),
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
    ],
    {
      stdio: ['ignore', out, out],
      detached: true, // own process group: stop() also ends the extension host and the sidecars it started
      env: {
        ...process.env,
        HOME: home,
        XDG_CONFIG_HOME: path.join(home, '.config'),
        XDG_DATA_HOME: path.join(home, '.local', 'share'),
        XDG_CACHE_HOME: path.join(home, '.cache'),
        TMPDIR: path.join(runDir, 'tmp'),
        EXTENSIONS_GALLERY: '{}', // no marketplace (default: open-vsx.org)
        ...env,
      },
    },
  );
  fs.closeSync(out);
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise((r) => setTimeout(() => r(true), 5000)),
    ]);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* group already gone */
    }
    if (timedOut) await exited;
  };
  cleanups.push(stop);
  const t = Date.now();
  while (!(await healthy(port))) {
    if (child.exitCode !== null)
      throw new Error(`code-server exited with ${child.exitCode}:\n${fs.readFileSync(logFile, 'utf8')}`);
    if (Date.now() - t > 60_000) throw new Error(`code-server did not answer /healthz within 60 s; log: ${logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`code-server pid ${child.pid} on port ${port} healthy after ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return { port, pid: child.pid, stop, logFile };
}

/** The extension under test: the repository, or with --vsix the folder code-server installed the package into. */
let extensionPath = REPO;

/** Installs a .vsix with code-server's own installer into <runDir>/vsix-extensions; returns the installed folder. */
async function installVsix(file, runDir) {
  const extensions = path.join(runDir, 'vsix-extensions');
  const home = path.join(runDir, 'vsix-home');
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(runDir, 'vsix-config.yaml'), '');
  const t = Date.now();
  const out = await new Promise((resolve, reject) => {
    const child = spawn(
      CODE_SERVER,
      [
        '--config',
        path.join(runDir, 'vsix-config.yaml'),
        '--user-data-dir',
        path.join(runDir, 'vsix-user-data'),
        '--extensions-dir',
        extensions,
        '--install-extension',
        path.resolve(file),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          HOME: home,
          XDG_CONFIG_HOME: path.join(home, '.config'),
          XDG_DATA_HOME: path.join(home, '.local', 'share'),
          EXTENSIONS_GALLERY: '{}',
        },
      },
    );
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
    });
    child.stderr.on('data', (d) => {
      text += d;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`code-server --install-extension exited with ${code}:\n${text}`)),
    );
  });
  const dirs = fs.existsSync(extensions)
    ? fs.readdirSync(extensions).filter((d) => d.startsWith('ddpm-studio.ddpm-studio-'))
    : [];
  if (dirs.length !== 1)
    throw new Error(
      `expected one ddpm-studio.ddpm-studio-* folder in ${extensions}, found ${JSON.stringify(dirs)}:\n${out}`,
    );
  const dir = path.join(extensions, dirs[0]);
  log(
    `installed ${file} (${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MB) into ${dir} in ${((Date.now() - t) / 1000).toFixed(1)} s: ${out.trim().split('\n').pop()}`,
  );
  return dir;
}

/** Workbench URL that opens `folder` with the extension under test loaded as extension under development (and
 * optionally tests). */
function workbenchUrl(port, folder, testsPath) {
  const authority = `127.0.0.1:${port}`;
  const remote = (p) => `vscode-remote://${authority}${p}`;
  const payload = [['extensionDevelopmentPath', remote(extensionPath)]];
  if (testsPath) payload.push(['extensionTestsPath', remote(testsPath)]);
  return `http://${authority}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Workbench start-up chatter that codeAutomationLog forwards along with the suite's output (kept in the log file). */
const WORKBENCH_NOISE =
  /^(Resolving connection token|Resolved connection token|Creating a socket|\[Service Worker\]|Ignoring fetching additional builtin extensions|Updating additional builtin extensions cache|ChatSessionStore:)|ENOTFOUND|open-vsx\.org|^\s*$/;

/** Records browser console output into a file and the non-local origins the page tried to reach. */
function watchBrowser(context, page, file) {
  const stream = fs.createWriteStream(file);
  page.on('console', (m) => stream.write(`${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => stream.write(`pageerror: ${e.message}\n`));
  const external = new Set();
  context.on('request', (r) => {
    const u = new URL(r.url());
    // *.vscode-cdn.net: webview resource URLs, answered by the webview's service worker from the server, never fetched.
    if (/^(https?|wss?):$/.test(u.protocol) && u.hostname !== '127.0.0.1' && !u.hostname.endsWith('.vscode-cdn.net'))
      external.add(u.origin);
  });
  return { stream, external };
}

// ---------------------------------------------------------------------------------------------------------------------
// suites

/** (a) mocha inside the extension host. Resolves {results: [{title, state, error?}], code}. */
async function runExtensionHostSuite(runDir, workspace) {
  const resultsFile = path.join(runDir, 'ext-results.json');
  const server = await startCodeServer(path.join(runDir, 'cs-ext'), {
    DDPM_E2E_RESULTS: resultsFile,
    ...(opts.grep ? { DDPM_E2E_GREP: opts.grep } : {}),
  });
  const context = await launchBrowser(path.join(runDir, 'chromium-ext'));
  const page = context.pages()[0] || (await context.newPage());
  const { stream, external } = watchBrowser(context, page, path.join(RESULTS, 'ext-browser-console.log'));
  let resolveExit;
  const exited = new Promise((r) => {
    resolveExit = r;
  });
  // The workbench reports the extension host's console (mocha's spec reporter) and the final exit code through these.
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const line = util.format(...(args || []));
    stream.write(`codeAutomationLog ${type}: ${line}\n`);
    if (!WORKBENCH_NOISE.test(line)) console.log(`  | ${line.replace(/\n/g, '\n  | ')}`);
  });
  await page.exposeFunction('codeAutomationExit', (code, logs) => {
    try {
      for (const l of logs || []) {
        const f = path.join(RESULTS, 'ext-vscode-logs', l.relativePath);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, l.contents);
      }
    } catch {
      /* best effort */
    }
    resolveExit(code);
  });
  const testsPath = path.join(REPO, 'test', 'e2e', 'suite', 'index.js');
  log('extension-host suite: opening the workbench');
  await page.goto(workbenchUrl(server.port, workspace, testsPath));
  let timer;
  const code = await Promise.race([
    exited,
    new Promise((r) => {
      timer = setTimeout(() => r('timeout'), EXT_SUITE_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  await page.screenshot({ path: path.join(RESULTS, 'ext-suite-end.png') }).catch(() => {});
  await context.close().catch(() => {});
  stream.end();
  await server.stop();
  fs.copyFileSync(server.logFile, path.join(RESULTS, 'ext-code-server.log'));
  if (external.size) log('warning: the browser tried to reach', [...external].join(' '));

  let recorded = { done: false, results: [] };
  try {
    recorded = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
  } catch {
    /* no test ran */
  }
  const results = recorded.results.map((r) => ({ ...r, title: `ext: ${r.title}` }));
  if (code === 'timeout') {
    results.push({
      title: 'ext: suite finished in time',
      state: 'failed',
      error: `no result after ${EXT_SUITE_TIMEOUT_MS / 1000} s`,
    });
  } else if (code !== 0 && !results.some((r) => r.state === 'failed')) {
    results.push({
      title: 'ext: suite ran',
      state: 'failed',
      error: `extension test runner exited with ${code} (see test-results/e2e/ext-*.log)`,
    });
  } else if (results.length === 0) {
    results.push({ title: 'ext: suite ran', state: 'failed', error: 'no tests ran' });
  }
  return results;
}

/** (b) the UI suite in ui.mjs. */
async function runUi(runDir, workspace) {
  const server = await startCodeServer(path.join(runDir, 'cs-ui'), {});
  try {
    const url = workbenchUrl(server.port, workspace);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`UI suite took over ${UI_SUITE_TIMEOUT_MS / 1000} s`)),
        UI_SUITE_TIMEOUT_MS,
      );
    });
    const suite = runUiSuite({
      url,
      workspace,
      extensionPath,
      outDir: RESULTS,
      profileDir: path.join(runDir, 'chromium-ui'),
      log,
      grep: opts.grep,
    });
    try {
      return (await Promise.race([suite, timeout])).map((r) => ({ ...r, title: `ui: ${r.title}` }));
    } catch (e) {
      return [{ title: 'ui: suite finished', state: 'failed', error: String(e.stack || e) }];
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await server.stop();
    fs.copyFileSync(server.logFile, path.join(RESULTS, 'ui-code-server.log'));
  }
}

// ---------------------------------------------------------------------------------------------------------------------

const cleanups = [];

async function main() {
  if (!fs.existsSync(CODE_SERVER)) throw new Error(`${CODE_SERVER} is missing: run npm run test:e2e:setup`);
  for (const f of ['dist/extension.js', 'dist/sidecar.js']) {
    if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing: run npm run build first`);
  }
  fs.rmSync(RESULTS, { recursive: true, force: true });
  fs.mkdirSync(RESULTS, { recursive: true });
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-e2e-'));
  const workspace = path.join(runDir, 'workspace');
  await makeWorkspace(workspace, runDir);
  log(`run folder ${runDir}; workspace ${workspace}`);
  if (opts.vsix) extensionPath = await installVsix(opts.vsix, runDir);

  const results = [];
  if (!opts.only || opts.only === 'ext') results.push(...(await runExtensionHostSuite(runDir, workspace)));
  if (!opts.only || opts.only === 'ui') results.push(...(await runUi(runDir, workspace)));

  // TAP-style summary
  console.log('\nTAP version 13');
  results.forEach((r, i) => {
    const ok = r.state !== 'failed';
    console.log(`${ok ? 'ok' : 'not ok'} ${i + 1} ${r.title}${r.state === 'skipped' ? ' # SKIP' : ''}`);
    if (!ok)
      console.log(
        `  ---\n  ${String(r.error || '')
          .split('\n')
          .slice(0, 8)
          .join('\n  ')}\n  ...`,
      );
  });
  const count = (s) => results.filter((r) => r.state === s).length;
  console.log(`1..${results.length}`);
  console.log(`# tests ${results.length}`);
  console.log(`# pass ${count('passed')}`);
  console.log(`# skip ${count('skipped')}`);
  console.log(`# fail ${count('failed')}`);
  console.log(`# duration ${((Date.now() - T0) / 1000).toFixed(1)} s`);
  const shots = fs
    .readdirSync(RESULTS)
    .filter((f) => f.endsWith('.png'))
    .sort();
  console.log(`# screenshots and logs in ${path.relative(process.cwd(), RESULTS) || '.'}: ${shots.join(' ')}`);
  const failed = count('failed') > 0;
  if (opts.keep || failed) console.log(`# run folder kept: ${runDir}`);
  else fs.rmSync(runDir, { recursive: true, force: true });
  return failed ? 1 : 0;
}

async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
}
for (const sig of ['SIGINT', 'SIGTERM'])
  process.once(sig, () => {
    log(`${sig}: stopping code-server`);
    cleanup().finally(() => process.exit(130));
  });

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(e);
  console.log('# fail 1');
} finally {
  await cleanup();
}
process.exit(code);
