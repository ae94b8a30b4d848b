/**
 * Where the per-user sidecar job process listens, and how to reach it: a Unix domain socket in a private folder
 * (0700, this user's: $DDPM_SIDECAR_DIR, else $XDG_RUNTIME_DIR/ddpm-studio, else <tmp>/ddpm-studio-<uid>), or on
 * Windows a named pipe whose name derives from the user's temporary folder. The folder also holds sidecar.json (the
 * process's pid, socket, backend, build; written by the sidecar) and sidecar.log (its stderr).
 *
 * The sidecar checks its folder in the same way (sidecar/socketServer.ts ensurePrivateDir); the extension may not
 * import sidecar code, hence these few lines twice.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface SidecarPaths {
  dir: string;
  socket: string;
  info: string;
  log: string;
}

/** What the running sidecar wrote into sidecar.json. */
export interface SidecarInfo {
  pid: number;
  socket: string;
  backend: string;
  nativePaths: string[];
  module: string;
  /** dist/sidecar.js's modification time when it started: a rebuilt or updated extension starts a new one. */
  build: number;
  started: number;
}

export function sidecarPaths(env: NodeJS.ProcessEnv = process.env): SidecarPaths {
  const uid = process.getuid?.() ?? os.userInfo().username;
  const dir =
    env.DDPM_SIDECAR_DIR ||
    (env.XDG_RUNTIME_DIR && process.platform === 'linux'
      ? path.join(env.XDG_RUNTIME_DIR, 'ddpm-studio')
      : path.join(os.tmpdir(), `ddpm-studio-${uid}`));
  const socket =
    process.platform === 'win32'
      ? `\\\\.\\pipe\\ddpm-studio-${createHash('sha256').update(dir).digest('hex').slice(0, 16)}`
      : path.join(dir, 'sidecar.sock');
  return { dir, socket, info: path.join(dir, 'sidecar.json'), log: path.join(dir, 'sidecar.log') };
}

/** Creates the folder (0700) or checks it: this user's directory, closed to others (tightened if it is ours). */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (process.platform === 'win32') return;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new Error(`${dir} belongs to another user (uid ${st.uid}): set DDPM_SIDECAR_DIR to a folder of your own`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

export function readInfo(file: string): SidecarInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as SidecarInfo;
    return Number.isInteger(info.pid) ? info : null;
  } catch {
    return null;
  }
}

/** A connected socket, or null when nothing listens (within timeoutMs). */
export function connectSocket(socket: string, timeoutMs = 2000): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    const timer = setTimeout(() => {
      c.destroy();
      resolve(null);
    }, timeoutMs);
    c.once('connect', () => {
      clearTimeout(timer);
      c.removeAllListeners('error');
      resolve(c);
    });
    c.once('error', () => {
      clearTimeout(timer);
      c.destroy();
      resolve(null);
    });
  });
}

/** The last `lines` lines of a text file ('' if unreadable). */
export function tail(file: string, lines = 20): string {
  try {
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r');
    try {
      const n = Math.min(size, 16 * 1024);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, size - n);
      return buf.toString('utf8').split('\n').filter(Boolean).slice(-lines).join('\n');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
