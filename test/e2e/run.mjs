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
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { launchBrowser } from './browser.mjs';
import { runUiSuite } from './ui.mjs';
import { makeWorkspace, SETTINGS } from './workspace.mjs';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const E2E_HOME = process.env.DDPM_E2E_HOME || path.join(REPO, '.cache', 'vscode-e2e');
const CODE_SERVER = path.join(E2E_HOME, 'code-server', 'node_modules', '.bin', 'code-server');
const RESULTS = path.join(REPO, 'test-results', 'e2e');
const EXT_SUITE_TIMEOUT_MS = 300_000;
const UI_SUITE_TIMEOUT_MS = 900_000;

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

/** Ends the sidecar job process of a run (detached from code-server's process group, it would outlive it). */
async function stopSidecar(dir) {
  let pid;
  try {
    pid = JSON.parse(fs.readFileSync(path.join(dir, 'sidecar.json'), 'utf8')).pid;
  } catch {
    return;
  }
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid, 'SIGKILL');
}

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
  const sidecarDir = path.join(runDir, 'sidecar');
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
        // The sidecar's job process (detached: it outlives a window reload) listens in this run's own folder, and
        // exits soon once idle.
        DDPM_SIDECAR_DIR: sidecarDir,
        DDPM_SIDECAR_IDLE_EXIT: '30',
        // The extension's test-only command options (extension/commandArgs.ts) in a run of the packaged extension too,
        // where the extension mode is Production, not Test.
        DDPM_STUDIO_TEST_HOOKS: '1',
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
    await stopSidecar(sidecarDir);
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
      sidecarDir: path.join(runDir, 'cs-ui', 'sidecar'),
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
  await makeWorkspace(workspace, runDir, log);
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
