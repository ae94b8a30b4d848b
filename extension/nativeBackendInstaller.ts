/**
 * Installs TensorFlow's native backend for tfjs (@tensorflow/tfjs-node-gpu for CUDA, or @tensorflow/tfjs-node for a
 * native CPU backend) into a folder of the extension's own (its global storage), for `DDPM: Install CUDA Backend`.
 *
 * Why not a dependency: both packages download libtensorflow 2.9 (CPU or CUDA 11.2 / cuDNN 8.1 build) in their
 * install script, which needs the internet and the right CUDA. So they are installed on demand, with npm, and the
 * sidecar finds them through `--native-path`.
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
import path from 'node:path';

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
  /** The npm command (default `npm`, or npm.cmd on Windows). */
  npmCommand?: string;
  /** What to hand npm instead of PACKAGE@NATIVE_VERSION, e.g. a tarball from a mirror. */
  packageSpec?: string;
  env?: NodeJS.ProcessEnv;
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

/** Removes the active install (and leftovers of interrupted ones). */
export function removeNativeBackend(storageDir: string): boolean {
  const existed = installedNativeBackend(storageDir) !== null;
  cleanLeftovers(storageDir);
  fs.rmSync(path.join(storageDir, NATIVE_DIR), { recursive: true, force: true });
  return existed;
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

function run(cmd: string, args: string[], cwd: string, o: InstallOptions, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    // npm is a .cmd script on Windows, which only a shell can start.
    const windows = process.platform === 'win32';
    // Its own process group on POSIX, so that a cancel also stops npm's children (the libtensorflow download).
    const child = spawn(cmd, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: windows && cmd !== o.nodePath,
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

const OFFLINE =
  /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|getaddrinfo|network (is )?unreachable|socket hang up|request to .* failed/i;

const lastLines = (text: string, n = 15) => text.trim().split(/\r?\n/).slice(-n).join('\n');

// ---- install --------------------------------------------------------------------------------------------------------

export async function installNativeBackend(o: InstallOptions): Promise<InstalledNativeBackend> {
  const pkg = NATIVE_PACKAGES[o.variant];
  const spec = o.packageSpec ?? `${pkg}@${NATIVE_VERSION}`;
  fs.mkdirSync(o.storageDir, { recursive: true });
  cleanLeftovers(o.storageDir);
  const staging = path.join(o.storageDir, `${STAGING_PREFIX}${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(staging);
  const cancelled = () => new NativeInstallError('cancelled', 'The install was cancelled; nothing was changed.');
  try {
    // A package.json of its own, so that npm installs here and not into whatever project encloses the storage.
    fs.writeFileSync(
      path.join(staging, 'package.json'),
      JSON.stringify(
        { name: 'ddpm-studio-native-backend', private: true, description: 'Installed by DDPM Studio' },
        null,
        2,
      ),
    );
    const env = {
      ...process.env,
      ...o.env,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };

    o.onStage?.(`Installing ${spec} with npm (libtensorflow is downloaded too: a few hundred MB)…`);
    const npm = o.npmCommand ?? (process.platform === 'win32' ? 'npm.cmd' : 'npm');
    const r = await run(
      npm,
      ['install', '--no-save', '--no-package-lock', '--omit=dev', '--loglevel=http', spec],
      staging,
      o,
      env,
    );
    if (o.signal?.aborted) throw cancelled();
    if (r.spawnError) {
      throw new NativeInstallError(
        'npm-missing',
        r.spawnError.code === 'ENOENT'
          ? `npm was not found (${npm}). Install Node.js, which includes npm, and make sure npm is on the PATH VS Code starts with.`
          : `npm could not be started: ${r.spawnError.message}`,
      );
    }
    if (r.code !== 0) {
      if (OFFLINE.test(r.tail)) {
        const host = /hostname: '([^']+)'|getaddrinfo \w+ ([^\s'"]+)|connect \w+ ([\d.:a-f]+)/i.exec(r.tail);
        const where = host ? ` (${host[1] ?? host[2] ?? host[3]} could not be reached)` : '';
        throw new NativeInstallError(
          'offline',
          `Could not download ${pkg}${where}: no internet, a proxy, or a blocked host. ` +
            "Nothing was installed. Try again when online; behind a proxy, set npm's proxy settings; for libtensorflow from a mirror, set TFJS_NODE_CDN_STORAGE.",
          lastLines(r.tail),
        );
      }
      throw new NativeInstallError(
        'npm-failed',
        `npm could not install ${spec} (exit ${r.code ?? r.signal}). Nothing was installed; the log has npm's output.`,
        lastLines(r.tail),
      );
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
