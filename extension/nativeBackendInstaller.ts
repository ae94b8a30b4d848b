/**
 * Installs TensorFlow's native backend for tfjs (@tensorflow/tfjs-node-gpu for CUDA, or @tensorflow/tfjs-node for a
 * native CPU backend) into a folder of the extension's own (its global storage), for `DDPM: Install CUDA Backend`.
 *
 * Why not a dependency: both packages download libtensorflow 2.9 (CPU or CUDA 11.2 / cuDNN 8.1 build) in their
 * install script, which needs the internet and the right CUDA. So they are installed on demand, with npm, and the
 * sidecar finds them through `--native-path`.
 *
 * What is installed is pinned: extension/nativeLocks.json holds the package.json and package-lock.json of each variant
 * (scripts/native-lock.ts writes them), and `npm ci` installs exactly those versions, checking each tarball's sha512
 * integrity, resolving nothing afresh. Dependencies' install scripts do not run (`--ignore-scripts`); only the native
 * package's own `install` script, which downloads libtensorflow and its addon, runs afterwards, by name and without a
 * shell. npm itself is started through its JavaScript entry (npm-cli.js) with node, never through a shell or
 * npm.cmd, and with no environment from the caller beyond npm's own settings (npm_config_*) and libtensorflow's
 * mirror (TFJS_NODE_CDN_STORAGE). Two windows cannot install at once: a lock file in the storage folder.
 *
 * Nothing is ever half-installed: npm runs in a fresh staging folder beside the target; the result is checked by
 * starting the real sidecar on it (`sidecar.js --probe --backend tensorflow`), which must load it, compute, and, for
 * the CUDA package, place ops on a GPU; only then is the staging folder renamed into place (with a marker file
 * written last). Any failure or a cancel removes the staging folder and leaves an earlier install as it was.
 *
 * No `vscode` import here: the command (extension/commands/nativeBackend.ts) adds the UI, and tests drive this
 * module directly with real npm.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nativeLocks from './nativeLocks.json';

export type NativeVariant = 'cuda' | 'cpu';

export const NATIVE_PACKAGES: Record<NativeVariant, string> = {
  cuda: '@tensorflow/tfjs-node-gpu',
  cpu: '@tensorflow/tfjs-node',
};

/** Must equal the @tensorflow/tfjs version the sidecar is built with: the native package registers into it. */
export const NATIVE_VERSION = '4.22.0';

/** The folder (inside the storage folder) that holds an active install, and its marker file. */
export const NATIVE_DIR = 'native-backend';
export const MARKER_FILE = 'ddpm-native-backend.json';
const STAGING_PREFIX = '.native-staging-';
const OLD_PREFIX = '.native-old-';
/** Held (O_EXCL) while an install or removal runs: another window's install must not race ours. */
export const INSTALL_LOCK = '.native-install.lock';

export interface InstalledNativeBackend {
  variant: NativeVariant;
  package: string;
  version: string;
  /** The folder to pass to the sidecar as --native-path. */
  dir: string;
  installedAt: string;
  /** What the probe reported, e.g. "libtensorflow (CUDA, GPU)". */
  device: string;
}

export type NativeInstallFailure =
  | 'npm-missing' // npm could not be started
  | 'offline' // the registry or libtensorflow's download could not be reached
  | 'npm-failed' // npm exited with an error for another reason
  | 'no-driver' // the CUDA package loaded without an NVIDIA driver
  | 'cuda-mismatch' // CUDA 11.2 / cuDNN 8.1 runtime libraries are missing
  | 'no-gpu' // the CUDA package loaded but placed nothing on a GPU
  | 'load-failed' // the sidecar could not load or use what npm installed
  | 'busy' // another window is installing or removing right now
  | 'cancelled';

export class NativeInstallError extends Error {
  constructor(
    readonly kind: NativeInstallFailure,
    message: string,
    /** The last lines of npm's or the probe's output, for the log. */
    readonly detail = '',
  ) {
    super(message);
    this.name = 'NativeInstallError';
  }
}

export interface InstallOptions {
  /** The extension's global storage folder; created if missing. */
  storageDir: string;
  variant: NativeVariant;
  /** dist/sidecar.js of this extension, run with `node` for the probe. */
  sidecarPath: string;
  /** The node to run the probe with (in VS Code: its own executable with ELECTRON_RUN_AS_NODE=1). */
  nodePath?: string;
  /** npm's JavaScript entry, npm-cli.js (default: found beside the `npm` on PATH). */
  npmCli?: string;
  /**
   * Tests only (the command refuses it otherwise: extension/commandArgs.ts): a package to install instead of the
   * pinned one, e.g. a stand-in tarball. Its lockfile is made first (`npm install --package-lock-only`), then the same
   * `npm ci` runs.
   */
  packageSpec?: string;
  /** npm's settings (npm_config_*) and TFJS_NODE_CDN_STORAGE only: any other variable is refused. */
  env?: Record<string, string>;
  /** Each line npm and the probe print. */
  onLog?: (line: string) => void;
  /** A short description of the current stage, for a progress notification. */
  onStage?: (message: string) => void;
  signal?: AbortSignal;
}

// ---- state on disk ------------------------------------------------------------------------------------------------

/** The active install, or null. A folder without a valid marker (never finished) does not count. */
export function installedNativeBackend(storageDir: string): InstalledNativeBackend | null {
  const dir = path.join(storageDir, NATIVE_DIR);
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MARKER_FILE), 'utf8')) as Partial<InstalledNativeBackend>;
    if ((m.variant !== 'cuda' && m.variant !== 'cpu') || typeof m.package !== 'string' || typeof m.device !== 'string')
      return null;
    return {
      variant: m.variant,
      package: m.package,
      version: String(m.version ?? ''),
      dir,
      installedAt: String(m.installedAt ?? ''),
      device: m.device,
    };
  } catch {
    return null;
  }
}

/** Removes the active install (and leftovers of interrupted ones); refused while another window installs. */
export function removeNativeBackend(storageDir: string): boolean {
  const existed = installedNativeBackend(storageDir) !== null;
  const release = fs.existsSync(storageDir) ? acquireInstallLock(storageDir) : () => undefined;
  try {
    cleanLeftovers(storageDir);
    fs.rmSync(path.join(storageDir, NATIVE_DIR), { recursive: true, force: true });
  } finally {
    release();
  }
  return existed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the storage folder's install lock, or throws NativeInstallError('busy'). A lock whose process has died (a
 * window closed mid-install) is taken over. Returns the function that gives it back.
 */
export function acquireInstallLock(storageDir: string): () => void {
  const file = path.join(storageDir, INSTALL_LOCK);
  const mine = `${process.pid} ${os.hostname()} ${crypto.randomBytes(4).toString('hex')}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === mine) fs.rmSync(file, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const [pid, host] = (() => {
      try {
        return fs.readFileSync(file, 'utf8').split(' ');
      } catch {
        return ['', ''];
      }
    })();
    if (host === os.hostname() && Number(pid) > 0 && !processAlive(Number(pid))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    throw new NativeInstallError(
      'busy',
      `Another VS Code window is installing or removing the native backend right now (process ${pid || '?'}). Try again when it is done.`,
    );
  }
  throw new NativeInstallError('busy', 'The native backend install lock is contended; try again.');
}

/** Staging and backup folders of installs that were interrupted (the editor closed, the machine stopped). */
export function cleanLeftovers(storageDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(storageDir);
  } catch {
    return;
  }
  for (const n of names) {
    if (n.startsWith(STAGING_PREFIX) || n.startsWith(OLD_PREFIX))
      fs.rmSync(path.join(storageDir, n), { recursive: true, force: true });
  }
}

// ---- processes ------------------------------------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout + stderr, last part. */
  tail: string;
  stdout: string;
  spawnError?: NodeJS.ErrnoException;
}

const TAIL = 20_000;

/**
 * Starts `cmd args` without a shell (arguments are passed as they are, on every platform) and collects its output.
 * `cmd` is always a node executable here: npm runs through npm-cli.js, install scripts through their .js file.
 */
function run(cmd: string, args: string[], cwd: string, o: InstallOptions, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    const windows = process.platform === 'win32';
    // Its own process group on POSIX, so that a cancel also stops npm's children (the libtensorflow download).
    const child = spawn(cmd, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
      detached: !windows,
    });
    let tail = '';
    let stdout = '';
    let partial = '';
    const onData = (chunk: Buffer, isStdout: boolean) => {
      const text = chunk.toString('utf8');
      if (isStdout) stdout += text;
      tail = (tail + text).slice(-TAIL);
      const lines = (partial + text).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) o.onLog?.(l);
    };
    child.stdout.on('data', (c: Buffer) => onData(c, true));
    child.stderr.on('data', (c: Buffer) => onData(c, false));
    const abort = () => {
      try {
        if (!windows && child.pid) process.kill(-child.pid, 'SIGTERM');
        else child.kill('SIGTERM');
      } catch {
        // already gone
      }
    };
    o.signal?.addEventListener('abort', abort, { once: true });
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      o.signal?.removeEventListener('abort', abort);
      if (partial.trim()) o.onLog?.(partial);
      resolve({ code, signal, tail, stdout, ...(spawnError ? { spawnError } : {}) });
    });
  });
}

/** Environment variables a caller may add: npm's own settings and libtensorflow's download mirror. */
const ALLOWED_ENV = /^(npm_config_[a-z0-9_]+|TFJS_NODE_CDN_STORAGE)$/i;

/** The children's environment: ours without NODE_OPTIONS (it would run in npm), plus the allowed extras. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const bad = Object.keys(extra).filter((k) => !ALLOWED_ENV.test(k));
  if (bad.length)
    throw new Error(`only npm settings (npm_config_*) and TFJS_NODE_CDN_STORAGE may be set, not ${bad.join(', ')}`);
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;
  return {
    ...env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

/**
 * npm's JavaScript entry beside the `npm` found on PATH: POSIX installs link bin/npm to
 * lib/node_modules/npm/bin/npm-cli.js; Windows has npm.cmd beside node_modules/npm/bin/npm-cli.js. Failing that, an
 * npm executable (a version manager's shim; npm.exe on Windows); null if none.
 */
export function findNpmCli(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | null {
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter(Boolean);
  // A version manager's shim (Volta, asdf) is an executable, not a link to npm-cli.js: started directly, still without
  // a shell (never a .cmd, which only cmd.exe can run).
  let shim: string | null = null;
  for (const dir of dirs) {
    if (!shim) {
      const exe = path.join(dir, platform === 'win32' ? 'npm.exe' : 'npm');
      if (fs.existsSync(exe)) shim = exe;
    }
    for (const name of platform === 'win32' ? ['npm.cmd', 'npm'] : ['npm']) {
      const bin = path.join(dir, name);
      if (!fs.existsSync(bin)) continue;
      const candidates = [
        (() => {
          try {
            return fs.realpathSync(bin);
          } catch {
            return '';
          }
        })(),
        path.join(dir, 'node_modules', 'npm', 'bin', 'npm-cli.js'),
        path.join(dir, '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
      ];
      const cli = candidates.find((c) => c.endsWith('npm-cli.js') && fs.existsSync(c));
      if (cli) return path.resolve(cli);
    }
  }
  return shim;
}

/**
 * The node that runs npm and install scripts: the `node` beside npm when there is one (the version npm supports),
 * else the probe's node (in VS Code its own executable, run as node with ELECTRON_RUN_AS_NODE=1).
 */
function nodeFor(npmCli: string, fallback: string): string {
  const exe = process.platform === 'win32' ? 'node.exe' : 'node';
  for (const dir of [
    path.resolve(path.dirname(npmCli), '..', '..', '..'), // Windows: <node dir>/node_modules/npm/bin
    path.resolve(path.dirname(npmCli), '..', '..', '..', '..', 'bin'), // POSIX: <prefix>/lib/node_modules/npm/bin
  ]) {
    const node = path.join(dir, exe);
    if (fs.existsSync(node)) return node;
  }
  return fallback;
}

const OFFLINE =
  /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|getaddrinfo|network (is )?unreachable|socket hang up|request to .* failed/i;

const lastLines = (text: string, n = 15) => text.trim().split(/\r?\n/).slice(-n).join('\n');

// ---- install --------------------------------------------------------------------------------------------------------

export async function installNativeBackend(o: InstallOptions): Promise<InstalledNativeBackend> {
  const pkg = NATIVE_PACKAGES[o.variant];
  const spec = o.packageSpec ?? `${pkg}@${NATIVE_VERSION}`;
  const env = childEnv(o.env);
  fs.mkdirSync(o.storageDir, { recursive: true });
  const release = acquireInstallLock(o.storageDir);
  try {
    // Safe under the lock: no other window has a staging folder now.
    cleanLeftovers(o.storageDir);
    return await installLocked(o, pkg, spec, env);
  } finally {
    release();
  }
}

/** A failed npm (or install script) run, sorted: offline, or failed. */
function npmFailure(r: RunResult, pkg: string, what: string): NativeInstallError {
  if (OFFLINE.test(r.tail)) {
    const host = /hostname: '([^']+)'|getaddrinfo \w+ ([^\s'"]+)|connect \w+ ([\d.:a-f]+)/i.exec(r.tail);
    const where = host ? ` (${host[1] ?? host[2] ?? host[3]} could not be reached)` : '';
    return new NativeInstallError(
      'offline',
      `Could not download ${pkg}${where}: no internet, a proxy, or a blocked host. ` +
        "Nothing was installed. Try again when online; behind a proxy, set npm's proxy settings; for libtensorflow from a mirror, set TFJS_NODE_CDN_STORAGE.",
      lastLines(r.tail),
    );
  }
  return new NativeInstallError(
    'npm-failed',
    `${what} failed (exit ${r.code ?? r.signal}). Nothing was installed; the log has npm's output.`,
    lastLines(r.tail),
  );
}

async function installLocked(
  o: InstallOptions,
  pkg: string,
  spec: string,
  env: NodeJS.ProcessEnv,
): Promise<InstalledNativeBackend> {
  const staging = path.join(o.storageDir, `${STAGING_PREFIX}${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(staging);
  const cancelled = () => new NativeInstallError('cancelled', 'The install was cancelled; nothing was changed.');
  try {
    const npmCli = o.npmCli ?? findNpmCli();
    if (!npmCli || !fs.existsSync(npmCli))
      throw new NativeInstallError(
        'npm-missing',
        `npm was not found${npmCli ? ` (${npmCli})` : ''}. Install Node.js, which includes npm, and make sure npm is on the PATH VS Code starts with.`,
      );
    const probeNode = o.nodePath ?? process.execPath;
    const node = nodeFor(npmCli, probeNode);
    // VS Code's own executable runs scripts as node only with ELECTRON_RUN_AS_NODE.
    const nodeEnv = node === process.execPath || node === probeNode ? { ...env, ELECTRON_RUN_AS_NODE: '1' } : env;
    const npm = (args: string[]) =>
      npmCli.endsWith('.js') ? run(node, [npmCli, ...args], staging, o, nodeEnv) : run(npmCli, args, staging, o, env);

    // The pinned package.json and lockfile (a package.json of its own also keeps npm out of any enclosing project).
    const pinned = (nativeLocks as Record<NativeVariant, { package: object; lock: object }>)[o.variant];
    if (o.packageSpec) {
      fs.writeFileSync(
        path.join(staging, 'package.json'),
        JSON.stringify({ name: 'ddpm-studio-native-backend', private: true, dependencies: { [pkg]: o.packageSpec } }),
      );
      const r = await npm(['install', '--package-lock-only', '--ignore-scripts', '--loglevel=http']);
      if (o.signal?.aborted) throw cancelled();
      if (r.code !== 0 || r.spawnError) throw npmFailure(r, pkg, `npm could not resolve ${spec}`);
    } else {
      fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify(pinned.package, null, 2));
      fs.writeFileSync(path.join(staging, 'package-lock.json'), JSON.stringify(pinned.lock, null, 2));
    }

    o.onStage?.(`Installing ${spec} with npm (libtensorflow is downloaded too: a few hundred MB)…`);
    // Exactly the lockfile's packages, each checked against its sha512; no dependency's install script runs.
    const r = await npm(['ci', '--ignore-scripts', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=http']);
    if (o.signal?.aborted) throw cancelled();
    if (r.spawnError) throw new NativeInstallError('npm-missing', `npm could not be started: ${r.spawnError.message}`);
    if (r.code !== 0) throw npmFailure(r, pkg, `npm could not install ${spec}`);

    // The native package's own install script (downloads libtensorflow and the addon), started directly.
    const pkgDir = path.join(staging, 'node_modules', ...pkg.split('/'));
    const script = (
      JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { scripts?: { install?: string } }
    ).scripts?.install;
    if (script !== undefined) {
      const m = /^node ([\w./-]+\.js)((?: [\w-]+)*)$/.exec(script.trim());
      if (!m)
        throw new NativeInstallError(
          'npm-failed',
          `${pkg} has an install script this installer does not run: ${script}`,
        );
      o.onStage?.('Downloading libtensorflow…');
      const args = [path.join(pkgDir, m[1]), ...m[2].split(' ').filter(Boolean)];
      const s = await run(node, args, pkgDir, o, nodeEnv);
      if (o.signal?.aborted) throw cancelled();
      if (s.code !== 0 || s.spawnError) throw npmFailure(s, pkg, `${pkg}'s install script (${script})`);
    }

    o.onStage?.('Checking that the sidecar can load and use it…');
    const probe = await run(
      o.nodePath ?? process.execPath,
      [o.sidecarPath, '--probe', '--backend', 'tensorflow', '--native-path', staging],
      staging,
      o,
      {
        ...env,
        ELECTRON_RUN_AS_NODE: '1',
      },
    );
    if (o.signal?.aborted) throw cancelled();
    const line = probe.stdout.split('\n').find((l) => l.startsWith('{'));
    type ProbeLine = { ok: boolean; device?: string; module?: string | null; error?: string };
    let result: ProbeLine | null = null;
    try {
      result = line ? (JSON.parse(line) as ProbeLine) : null;
    } catch {
      result = null;
    }
    if (!result || !result.ok) {
      const why = result?.error ?? `the check exited with ${probe.code ?? probe.signal} without a result`;
      const kind: NativeInstallFailure = /no NVIDIA driver/.test(why)
        ? 'no-driver'
        : /CUDA libraries it was built for are missing/.test(why)
          ? 'cuda-mismatch'
          : 'load-failed';
      throw new NativeInstallError(
        kind,
        `${pkg} was downloaded but does not work here: ${why.replace(/^backend 'tensorflow' is not available: /, '')}. Nothing was installed.`,
        lastLines(probe.tail),
      );
    }
    const device = result.device ?? 'libtensorflow';
    if (o.variant === 'cuda' && !/GPU\)$/.test(device)) {
      throw new NativeInstallError(
        'no-gpu',
        `${pkg} loads, but TensorFlow found no usable GPU (${device}). Nothing was installed. Check nvidia-smi, or install the native CPU backend instead.`,
        lastLines(probe.tail),
      );
    }

    // Activate: marker last inside staging, then swap folders (renames within one parent folder).
    const marker: Omit<InstalledNativeBackend, 'dir'> = {
      variant: o.variant,
      package: pkg,
      version: NATIVE_VERSION,
      installedAt: new Date().toISOString(),
      device,
    };
    const markerTmp = path.join(staging, `${MARKER_FILE}.tmp`);
    const fd = fs.openSync(markerTmp, 'w');
    fs.writeSync(fd, JSON.stringify(marker, null, 2));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(markerTmp, path.join(staging, MARKER_FILE));
    if (o.signal?.aborted) throw cancelled();
    const target = path.join(o.storageDir, NATIVE_DIR);
    const old = path.join(o.storageDir, `${OLD_PREFIX}${crypto.randomBytes(6).toString('hex')}`);
    const hadOld = fs.existsSync(target);
    if (hadOld) fs.renameSync(target, old);
    try {
      fs.renameSync(staging, target);
    } catch (e) {
      if (hadOld) fs.renameSync(old, target);
      throw e;
    }
    if (hadOld) fs.rmSync(old, { recursive: true, force: true });
    return { ...marker, dir: target };
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (e instanceof NativeInstallError) throw e;
    if (o.signal?.aborted) throw cancelled();
    throw new NativeInstallError(
      'load-failed',
      `The install failed: ${e instanceof Error ? e.message : String(e)}. Nothing was installed.`,
    );
  }
}

/**
 * Whether this machine may have an NVIDIA GPU that the CUDA package could use: the driver's files are there (Linux:
 * /proc/driver/nvidia or /dev/nvidia*, WSL: its libcuda or nvidia-smi; Windows: nvidia-smi.exe in System32). Never on
 * macOS (no CUDA build of libtensorflow). Cheap (a few stat calls): it decides which install command the palette shows.
 */
export function nvidiaGpuMayExist(
  platform: NodeJS.Platform = process.platform,
  exists: (file: string) => boolean = fs.existsSync,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (platform === 'linux')
    return [
      '/proc/driver/nvidia/version',
      '/dev/nvidiactl',
      '/dev/nvidia0',
      '/usr/lib/wsl/lib/libcuda.so',
      '/usr/lib/wsl/lib/nvidia-smi',
    ].some((f) => exists(f));
  if (platform === 'win32')
    return exists(path.win32.join(env.SystemRoot ?? env.windir ?? 'C:\\Windows', 'System32', 'nvidia-smi.exe'));
  return false;
}
