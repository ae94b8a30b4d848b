// The real sidecar over stdio, fed a malformed Content-Length (issue 16): it used to stay alive answering nothing; now
// it exits at once with a message naming the problem (a client sees the connection close, not requests that hang).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.ts';

async function feed(bad: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'sidecar.js'), '--stdio', '--backend', 'cpu'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ddpm/inspect', params: { path: '/nonexistent' } });
  const t0 = Date.now();
  child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  child.stdin.write(bad);
  // A valid request after the bad header: it cannot be found in the stream any more.
  child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, ms: Date.now() - t0 };
}

test('a Content-Length that is not a number: the sidecar exits at once, saying why', async () => {
  const r = await feed('Content-Length: abc\r\n\r\n{}');
  assert.equal(r.code, 1, `exit ${r.code} after ${r.ms} ms; stderr: ${r.stderr}`);
  assert.match(
    r.stderr,
    /the JSON-RPC stream on stdin is corrupt: a Content-Length that is not a number \("abc"\); exiting/,
  );
  assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
});

test('a Content-Length over the limit and a header without one also end the process with a message', async () => {
  const huge = await feed('Content-Length: 99999999999\r\n\r\n');
  assert.equal(huge.code, 1, huge.stderr);
  assert.match(huge.stderr, /a Content-Length of 99,999,999,999 bytes, over the limit of 268,435,456/);
  const none = await feed('X-Nothing: 1\r\n\r\n{}');
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /a message without a Content-Length header/);
});
