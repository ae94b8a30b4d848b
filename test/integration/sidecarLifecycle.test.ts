// Sidecar lifecycle: Node IPC transport (as vscode-languageclient uses it) and shutdown saving a running job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter } from 'vscode-jsonrpc/node';
import { startSidecar } from '../helpers/sidecarClient.ts';
import { repoRoot } from '../helpers/paths.ts';
import { InfoRequest, JobEndedNotification, TrainRequest, type JobEndedParams } from '../../sidecar/protocol.ts';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';

test('--node-ipc: the same protocol over Node IPC', async () => {
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, 'dist', 'sidecar.js'), '--node-ipc', '--backend', 'wasm'],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  );
  const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  connection.listen();
  const info = await connection.sendRequest(InfoRequest, {});
  assert.equal(info.backend.name, 'wasm');
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  await connection.sendRequest('shutdown');
  await connection.sendNotification('exit');
  assert.equal(await exited, 0);
  connection.dispose();
});

test('shutdown during training saves a checkpoint first, then exit ends the process', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-shutdown-'));
  try {
    const sc = startSidecar();
    const ended = new Promise<JobEndedParams>((r) => sc.connection.onNotification(JobEndedNotification, r));
    await sc.connection.sendRequest(TrainRequest, {
      data: 'mnist',
      preset: 'tiny',
      steps: 100000,
      batch: 2,
      out,
      saveEvery: 0,
    });
    await new Promise((r) => setTimeout(r, 500));
    const exited = new Promise<number | null>((r) => sc.child.once('exit', r));
    await sc.connection.sendRequest('shutdown');
    const e = await ended;
    assert.equal(e.reason, 'stopped');
    assert.ok(e.checkpoint && fs.existsSync(e.checkpoint));
    assert.equal(loadCheckpoint(path.join(out, 'latest.safetensors')).meta.step, e.step);
    await sc.connection.sendNotification('exit');
    assert.equal(await exited, 0);
    sc.connection.dispose();
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
