// Bits/dim end to end on a tiny checkpoint with T = 16: `ddpm eval` (the bundle: table, --json, progress on stderr,
// bad arguments) and the sidecar's ddpm/evaluate (progress notifications, the same numbers as the CLI for the same
// seed, cancellation, refusals as BadInput).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import {
  ErrorCodes,
  EvaluateProgressNotification,
  EvaluateRequest,
  type EvaluateProgressParams,
  type EvaluateResult,
} from '../../sidecar/protocol.ts';
import { repoRoot } from '../helpers/paths.ts';
import { startSidecar } from '../helpers/sidecarClient.ts';
import { saveTinyCheckpoint } from '../helpers/tinyCheckpoint.ts';

const bundle = path.join(repoRoot, 'dist', 'ddpm.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-eval-e2e-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ckpt = path.join(tmp, 'tiny.safetensors');
const T = 16;
test.before(() => saveTinyCheckpoint(ckpt, T));

function ddpm(...args: string[]) {
  const r = spawnSync(process.execPath, [bundle, ...args], { cwd: tmp, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let cliResult: EvaluateResult;

test('ddpm eval: a table on stdout, every number with --json, progress on stderr; bad arguments exit 2', () => {
  const args = ['eval', '--ckpt', ckpt, '--data', 'mnist', '--n', '3', '--seed', '2', '--backend', 'wasm'];
  const table = ddpm(...args);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stderr, /bits\/dim of 3 images of mnist over T = 16: 48 forward passes on 1 thread/);
  assert.match(table.stderr, /48\/48 forward passes/);
  assert.match(table.stdout, /^bits\/dim {2}\d+\.\d{4} ± \d+\.\d{4} {2}\(variational bound/m);
  assert.match(table.stdout, /^ {2}prior {6}L_T/m);
  assert.match(table.stdout, /^ {2}12–15 /m);
  assert.match(table.stdout, /^48 forward passes in [\d.]+ s on wasm/m);

  const json = ddpm(...args, '--json');
  assert.equal(json.code, 0, json.stderr);
  cliResult = JSON.parse(json.stdout) as EvaluateResult;
  assert.equal(cliResult.n, 3);
  assert.equal(cliResult.T, T);
  assert.equal(cliResult.bpd!.perT.vb.length, T);
  assert.equal(cliResult.bpd!.perImage.length, 3);
  assert.match(table.stdout, new RegExp(`^bits/dim  ${cliResult.bpd!.mean.toFixed(4)} `, 'm'), 'same seed, same table');

  // The sample quality alone (the tiny checkpoint names no data: the classifier of --data mnist judges it).
  const quality = ddpm(...args, '--quality', '--no-bpd');
  assert.equal(quality.code, 0, quality.stderr);
  assert.match(
    quality.stdout,
    /^sample quality of 3 samples \(DDIM 16 steps, seed 2\), judged by .*mnist\.safetensors$/m,
  );
  assert.match(quality.stdout, /^ {2}Fréchet distance {2}\d+\.\d\d /m);
  assert.match(quality.stdout, /^ {2}coverage {10}\d+\/10 classes with ≥ 3\.0 % of the samples$/m);
  assert.doesNotMatch(quality.stdout, /bits\/dim/);
  assert.match(quality.stderr, /16\/16 sampler steps \(quality\)/);
  const n = ddpm('eval', '--ckpt', ckpt, '--data', 'mnist', '--n', '0');
  assert.equal(n.code, 2);
  assert.match(n.stderr, /--n must be an integer in 1\.\.10000, got 0/);
  const missing = ddpm('eval', '--ckpt', ckpt);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing --data/);
  const help = ddpm('eval', '--help');
  assert.equal(help.code, 0);
  assert.match(
    help.stdout,
    /^usage: ddpm eval --ckpt FILE --data mnist\|idx:PATH\|cifar10:PATH\|folder:PATH \[--n 64\]/,
  );
});

test('ddpm/evaluate over JSON-RPC: progress notifications, the CLI numbers for the same seed, cancellation, BadInput', async () => {
  const sc = startSidecar();
  try {
    const progress: EvaluateProgressParams[] = [];
    sc.connection.onNotification(EvaluateProgressNotification, (p) => progress.push(p));
    const r = await sc.connection.sendRequest(EvaluateRequest, {
      checkpoint: ckpt,
      data: 'mnist',
      n: 3,
      seed: 2,
      token: 'e1',
    });
    assert.equal(r.bpd!.mean, cliResult.bpd!.mean, 'the sidecar and the CLI agree for the same seed');
    assert.deepEqual(r.images, [0, 1, 2]);
    const mine = progress.filter((p) => p.token === 'e1');
    assert.ok(mine.length >= 1);
    assert.deepEqual(mine.at(-1), { token: 'e1', stage: 'bpd', done: 48, total: 48 });

    const source = new CancellationTokenSource();
    sc.connection.onNotification(EvaluateProgressNotification, (p) => {
      if (p.token === 'cancel') source.cancel();
    });
    await assert.rejects(
      sc.connection.sendRequest(
        EvaluateRequest,
        { checkpoint: ckpt, data: 'mnist', n: 64, token: 'cancel', workers: 1 },
        source.token,
      ),
      (e: ResponseError<void>) => e.code === ErrorCodes.RequestCancelled,
    );
    await assert.rejects(
      sc.connection.sendRequest(EvaluateRequest, { checkpoint: ckpt, data: 'cifar10:/nowhere', quality: true }),
      (e: ResponseError<void>) =>
        e.code === ErrorCodes.BadInput && /no sample-quality classifier exists/.test(e.message),
    );
    await assert.rejects(
      sc.connection.sendRequest(EvaluateRequest, { checkpoint: ckpt, data: 'mnist', n: 0 }),
      (e: ResponseError<void>) =>
        e.code === ErrorCodes.InvalidParams && /field 'n' must be an integer in 1\.\.10000, got 0/.test(e.message),
    );
    // Still serving after all that.
    const again = await sc.connection.sendRequest(EvaluateRequest, { checkpoint: ckpt, data: 'mnist', n: 1, seed: 2 });
    assert.ok(Math.abs(again.bpd!.perImage[0] - r.bpd!.perImage[0]) < 1e-5, 'image 0 gets the same noise with n = 1');
  } finally {
    await sc.close();
  }
});
