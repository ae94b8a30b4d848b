// The sidecar as a per-user job process (`dist/sidecar.js --listen SOCKET`): a private folder and socket, several
// clients sharing one training job that outlives the client that started it, ddpm/trainRun for a client that attaches
// later (the loss history from loss.csv), the idle exit, and a second process giving way to the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  createMessageConnection,
  SocketMessageReader,
  SocketMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { repoRoot } from '../helpers/paths.ts';
import { exited } from '../helpers/sidecarClient.ts';
import {
  InfoRequest,
  JobEndedNotification,
  TrainProgressNotification,
  TrainRequest,
  TrainRunRequest,
  TrainStopRequest,
  type JobEndedParams,
} from '../../sidecar/protocol.ts';
import { ensurePrivateDir } from '../../sidecar/socketServer.ts';

/** A short folder: a Unix socket's path must stay under ~100 bytes. */
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-sock-'));

function startJobProcess(dir: string, idleExit: number): { child: ChildProcess; socket: string; log: () => string } {
  const socket = path.join(dir, 'run', 'sidecar.sock');
  const child = spawn(
    process.execPath,
    [
      path.join(repoRoot, 'dist', 'sidecar.js'),
      '--listen',
      socket,
      '--info',
      path.join(dir, 'run', 'sidecar.json'),
      '--idle-exit',
      String(idleExit),
      '--backend',
      'wasm',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, socket, log: () => err };
}

async function waitFor<T>(what: string, f: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function connect(socket: string): Promise<{ connection: MessageConnection; socket: net.Socket }> {
  const s: net.Socket = await waitFor('the socket to answer', () => {
    return new Promise<net.Socket | null>((resolve) => {
      const c = net.connect(socket);
      c.once('connect', () => resolve(c));
      c.once('error', () => resolve(null));
    });
  });
  const connection = createMessageConnection(new SocketMessageReader(s), new SocketMessageWriter(s));
  connection.listen();
  return { connection, socket: s };
}

test('--listen: a private folder and socket; the training job outlives its client; a later client attaches', async () => {
  const dir = tmp();
  const out = path.join(dir, 'out');
  const p = startJobProcess(dir, 1);
  try {
    const a = await connect(p.socket);
    // Permissions: the folder is the user's alone, and so is the socket.
    assert.equal(fs.statSync(path.dirname(p.socket)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(p.socket).mode & 0o777, 0o600);
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'sidecar.json'), 'utf8')) as { pid: number };
    assert.equal(info.pid, p.child.pid);

    const b = await connect(p.socket);
    const seenByB: number[] = [];
    b.connection.onNotification(TrainProgressNotification, (n) => seenByB.push(n.step));
    assert.equal(await b.connection.sendRequest(TrainRunRequest, {}), null, 'no run before any job');
    const { jobId } = await a.connection.sendRequest(TrainRequest, {
      data: 'mnist',
      preset: 'tiny',
      steps: 100000,
      batch: 2,
      out,
      saveEvery: 5,
      sampleEvery: 0,
    });
    await waitFor('progress at client B', () => seenByB.length >= 3);
    // A goes away (a window reloads): the job trains on; B still hears of it.
    a.connection.dispose();
    a.socket.destroy();
    const before = seenByB.at(-1)!;
    await waitFor('progress after client A left', () => seenByB.at(-1)! >= before + 5);

    // C attaches as a reloaded window does: the live job and the whole loss history.
    const c = await connect(p.socket);
    const run = await c.connection.sendRequest(TrainRunRequest, {});
    assert.ok(run && run.job, JSON.stringify(run));
    assert.equal(run.job.jobId, jobId);
    assert.equal(run.out, out);
    assert.equal(run.data, 'mnist');
    assert.equal(run.preset, 'tiny');
    assert.equal(run.steps, 100000);
    assert.equal(run.batch, 2);
    assert.equal(run.resumedFrom, null);
    assert.ok(
      run.history.steps.length >= run.job.step - 1,
      `${run.history.steps.length} points at step ${run.job.step}`,
    );
    assert.deepEqual(run.history.steps.slice(0, 3), [1, 2, 3]);
    assert.equal(run.history.quarters.length, 4);
    assert.ok(run.checkpoints.length >= 1 && run.checkpoints[0].step === 5, JSON.stringify(run.checkpoints));
    // With no client at all the process stays while the job trains (idle exit is 1 s).
    b.connection.dispose();
    b.socket.destroy();
    c.connection.dispose();
    c.socket.destroy();
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(p.child.exitCode, null, 'the process exited while training');

    const d = await connect(p.socket);
    const ended = new Promise<JobEndedParams>((r) => d.connection.onNotification(JobEndedNotification, r));
    const stopped = await d.connection.sendRequest(TrainStopRequest, { jobId });
    const e = await ended;
    assert.equal(e.reason, 'stopped');
    assert.equal(e.step, stopped.step);
    // The stopped run, as a restored Training view asks for it: no job, how it ended, its history and checkpoints.
    const after = await d.connection.sendRequest(TrainRunRequest, { out });
    assert.ok(after);
    assert.equal(after.job, null);
    assert.deepEqual(after.ended, { reason: 'stopped', step: stopped.step, checkpoint: stopped.checkpoint });
    assert.equal(after.step, stopped.step);
    assert.equal(after.history.steps.at(-1), stopped.step);
    assert.equal(after.latest, path.join(out, 'latest.safetensors'));
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).steps, 100000);

    // Idle: the last client leaves, no job runs: the process exits after --idle-exit and removes its socket.
    const t0 = Date.now();
    d.connection.dispose();
    d.socket.destroy();
    await waitFor('the idle exit', () => p.child.exitCode !== null || p.child.signalCode !== null, 15_000);
    const idle = Date.now() - t0;
    assert.equal(p.child.exitCode, 0, p.log());
    assert.ok(idle >= 900 && idle < 5000, `exited ${idle} ms after the last client`);
    assert.ok(!fs.existsSync(p.socket), 'the socket was removed');
    assert.ok(!fs.existsSync(path.join(dir, 'run', 'sidecar.json')), 'the info file was removed');
  } finally {
    p.child.kill('SIGKILL');
    await exited(p.child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--listen: a second process gives way to the one listening; a stale socket file is replaced', async () => {
  const dir = tmp();
  const first = startJobProcess(dir, 30);
  try {
    const a = await connect(first.socket);
    const second = startJobProcess(dir, 30);
    await exited(second.child);
    assert.equal(second.child.exitCode, 0);
    assert.match(second.log(), /another sidecar listens/);
    // The first still serves.
    assert.equal((await a.connection.sendRequest(InfoRequest, {})).backend.name, 'wasm');
    a.connection.dispose();
    a.socket.destroy();
    // Killed without a chance to clean up: its socket file stays, and the next process replaces it.
    first.child.kill('SIGKILL');
    await exited(first.child);
    assert.ok(fs.existsSync(first.socket));
    const third = startJobProcess(dir, 30);
    try {
      const c = await connect(third.socket);
      assert.equal(
        await c.connection.sendRequest(TrainRunRequest, { out: path.join(dir, 'none') }),
        null,
        'a folder without a run',
      );
      c.connection.dispose();
      c.socket.destroy();
    } finally {
      third.child.kill('SIGKILL');
      await exited(third.child);
    }
  } finally {
    first.child.kill('SIGKILL');
    await exited(first.child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the socket folder: created 0700, tightened when open to others, refused when another user owns it', () => {
  const dir = tmp();
  try {
    const mine = path.join(dir, 'a', 'b');
    ensurePrivateDir(mine);
    assert.equal(fs.statSync(mine).mode & 0o777, 0o700);
    fs.chmodSync(mine, 0o777);
    ensurePrivateDir(mine);
    assert.equal(fs.statSync(mine).mode & 0o777, 0o700);
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    assert.throws(() => ensurePrivateDir(file), /not a directory|EEXIST/);
    if (process.getuid?.() === 0) {
      // Only root can make a folder that belongs to someone else.
      const theirs = path.join(dir, 'theirs');
      fs.mkdirSync(theirs, { mode: 0o700 });
      fs.chownSync(theirs, 4242, 4242);
      assert.throws(() => ensurePrivateDir(theirs), /belongs to another user \(uid 4242/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
