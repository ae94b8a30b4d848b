/**
 * A training run's folder belongs to one job at a time. Two jobs writing the same folder would interleave their
 * checkpoints and overwrite each other's latest.safetensors, so a job takes the folder's lock file (created with
 * O_EXCL: exactly one creator wins) and gives it back when it ends. A lock left by a process that was killed is taken
 * over: its process id is in the file and no longer runs.
 *
 * Temporary files of atomic writes (checkpoint.ts TEMP_FILE) are removed only when their writer is dead: a live
 * writer's file (an export into the run folder, another program's) is never touched, and names of other patterns
 * are never touched at all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEMP_FILE } from '../checkpoint/checkpoint.ts';
import { BadInputError } from './errors.ts';

export const RUN_LOCK = '.ddpm-run.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

/** Whether a process with this id runs on this machine (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockInfo | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockInfo>;
    return typeof v.pid === 'number' && typeof v.host === 'string'
      ? { pid: v.pid, host: v.host, started: String(v.started ?? '') }
      : null;
  } catch {
    return null;
  }
}

/**
 * Takes the run folder's lock (the folder must exist) or throws a BadInputError naming the job that holds it.
 * Returns the function that gives it back (idempotent).
 */
export function acquireRunLock(dir: string): () => void {
  const file = path.join(dir, RUN_LOCK);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = readLock(file);
      // Another host's lock (a shared drive) cannot be checked: it counts as held.
      const stale = held !== null && held.host === mine.host && held.pid !== process.pid && !processAlive(held.pid);
      if (!stale) {
        const who = held
          ? held.pid === process.pid && held.host === mine.host
            ? 'another training job of this process'
            : `process ${held.pid} on ${held.host}, since ${held.started}`
          : 'another job (its lock file is being written)';
        throw new BadInputError(
          `the run folder ${dir} is in use by ${who}: two jobs cannot train into one folder. Pick another folder, or stop that job (if no job runs there, delete ${file}).`,
        );
      }
      // The holder was killed: take its lock over (rename is atomic; a competitor's rename fails with ENOENT).
      try {
        fs.renameSync(file, `${file}.${process.pid}.stale`);
        fs.rmSync(`${file}.${process.pid}.stale`, { force: true });
      } catch {
        // someone else took it over first: try again
      }
      continue;
    }
    try {
      fs.writeSync(fd, JSON.stringify(mine));
    } finally {
      fs.closeSync(fd);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Only our own lock: never one that another job took over after ours was (wrongly) judged stale.
      const now = readLock(file);
      if (now && now.pid === mine.pid && now.started === mine.started) fs.rmSync(file, { force: true });
    };
  }
  throw new BadInputError(`could not take the lock of the run folder ${dir}: other jobs keep taking it`);
}

/** Removes the temporary files of atomic writes in `dir` whose writer process has died; returns their names. */
export function removeDeadWritersTempFiles(dir: string): string[] {
  const removed: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    const m = TEMP_FILE.exec(f);
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}
