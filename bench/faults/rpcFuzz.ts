/**
 * Fault figure: N random or mutated JSON-RPC messages to the real sidecar (dist/sidecar.js --stdio).
 *
 *   npm run build && flock /tmp/ddpm-heavy.lock nice -n 5 node --import tsx bench/faults/rpcFuzz.ts [--messages 10000]
 *       [--seed 1] [--json]
 *
 * The messages are well framed (a broken frame ends the process by design: test/integration/sidecarFraming.test.ts)
 * and are: requests of every method with their params mutated (fields removed, replaced by values of other types,
 * huge, negative, non-finite-as-text, long or control-character strings, deep nesting, long arrays, unknown fields,
 * params that are not an object), unknown and malformed method names, odd ids, notifications and responses nobody
 * asked for, and bodies that are not JSON or not JSON-RPC. Paths point into a scratch folder (a tiny checkpoint, a
 * PNG, missing files) so that some requests are valid and run: those that still run after 3 s are cancelled, and a
 * training job that starts is stopped. Every request (a message with an id and a method) must be answered — a result
 * or an error — within 60 s, the process must stay alive, and a final ddpm/info must answer. Reported: answered,
 * by outcome; unanswered; crashes; the sidecar's peak memory (VmHWM) and the time taken.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { StreamMessageReader } from 'vscode-jsonrpc/node';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { saveTinyCheckpoint } from '../../test/helpers/tinyCheckpoint.ts';

const { values: opts } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(opts.messages);
const rng = new Rng(Number(opts.seed));
const repo = path.resolve(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-fault-rpc-'));
const log = (m: string) => process.stderr.write(`${m}\n`);
const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];

const ckpt = path.join(work, 'tiny.safetensors');
const png = path.join(work, 'a.png');
const missing = path.join(work, 'missing.safetensors');
const runDir = path.join(work, 'run');

/** A valid params object per method: the starting point of the mutations. */
const BASE: Record<string, () => Record<string, unknown>> = {
  'ddpm/info': () => ({}),
  'ddpm/train': () => ({
    data: 'mnist',
    preset: 'tiny',
    steps: 3,
    batch: 2,
    out: runDir,
    saveEvery: 0,
    sampleEvery: 0,
  }),
  'ddpm/trainStop': () => ({ jobId: 'nope' }),
  'ddpm/trainRun': () => ({ out: runDir }),
  'ddpm/sample': () => ({ checkpoint: ckpt, n: 1, steps: 2, frames: 1 }),
  'ddpm/interpolate': () => ({ checkpoint: ckpt, imageA: png, imageB: png, t: 5, steps: 2, lambdas: [0.5] }),
  'ddpm/inpaint': () => ({ checkpoint: ckpt, image: png, mask: png, steps: 2 }),
  'ddpm/img2img': () => ({ checkpoint: ckpt, image: png, strength: 0.1, steps: 2 }),
  'ddpm/evaluate': () => ({ checkpoint: ckpt, data: 'mnist', n: 1 }),
  'ddpm/inspect': () => ({ path: ckpt }),
  'ddpm/tensorStats': () => ({ path: ckpt, name: 'model.conv_in.weight', bins: 8 }),
  'ddpm/emaDiff': () => ({ path: ckpt }),
  'ddpm/import': () => ({ path: missing, out: path.join(work, 'imported.safetensors') }),
};
const METHODS = Object.keys(BASE);

function deep(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = rng.uniform() < 0.5 ? { a: v } : [v];
  return v;
}

const WEIRD: (() => unknown)[] = [
  () => null,
  () => true,
  () => 0,
  () => -1,
  () => 2 ** 53,
  () => 1e308,
  () => -1e308,
  () => 0.5,
  () => rng.int(2 ** 31) - 2 ** 30,
  () => 'NaN',
  () => 'Infinity',
  () => '',
  () => 'x'.repeat(rng.int(10_000)),
  () => '\x1b]52;c;aGk=\x07\u202e\u0000',
  () => '../../../../etc/passwd',
  () => missing,
  () => ckpt,
  () => png,
  () => work,
  () => '/dev/zero',
  () => 'mnist',
  () => 'idx:/dev/zero',
  () => 'folder:/proc',
  () => [],
  () => Array.from({ length: rng.int(2000) }, () => rng.uniform()),
  () => ({}),
  () => ({ __proto__: { polluted: true }, constructor: { prototype: { x: 1 } } }),
  () => deep(rng.int(2000)),
];

function mutate(params: Record<string, unknown>): unknown {
  const r = rng.uniform();
  if (r < 0.05) return pick(WEIRD)();
  const p: Record<string, unknown> = { ...params };
  const keys = Object.keys(p);
  for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
    const op = rng.int(4);
    const key = keys.length ? pick(keys) : 'x';
    if (op === 0) delete p[key];
    else if (op === 1 || op === 2) p[key] = pick(WEIRD)();
    else p[pick(['extra', '__proto__', 'constructor', 'toString', 'n', 'steps', 'frames', 'T'])] = pick(WEIRD)();
  }
  return p;
}

/** One message: its body, and whether it is a request that must be answered (its id). */
function message(id: number): { body: string; id: number | string | null; method?: string } {
  const r = rng.uniform();
  if (r < 0.7) {
    const method = pick(METHODS);
    const idv = rng.uniform() < 0.9 ? id : `s${id}`;
    return {
      body: JSON.stringify({ jsonrpc: '2.0', id: idv, method, params: mutate(BASE[method]()) }),
      id: idv,
      method,
    };
  }
  if (r < 0.8) {
    const method = pick([
      'ddpm/nothing',
      'ddpm/',
      '',
      '$/cancelRequest',
      'shutdownx',
      'ddpm/info\u0000',
      'x'.repeat(5000),
      'initialize',
    ]);
    if (method === 'initialize')
      return { body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { capabilities: {} } }), id, method };
    return { body: JSON.stringify({ jsonrpc: '2.0', id, method, params: mutate({ a: 1 }) }), id, method };
  }
  if (r < 0.88) {
    // Notifications (no answer due): including cancellations of ids that do not exist, and progress the sidecar sends.
    const method = pick([
      '$/cancelRequest',
      'ddpm/log',
      'ddpm/sampleProgress',
      'initialized',
      'ddpm/zzz',
      '$/setTrace',
    ]);
    return { body: JSON.stringify({ jsonrpc: '2.0', method, params: mutate({ id: rng.int(100) }) }), id: null };
  }
  if (r < 0.93) {
    // Responses nobody asked for.
    return { body: JSON.stringify({ jsonrpc: '2.0', id: rng.int(1000), result: pick(WEIRD)() }), id: null };
  }
  // Bodies that are not JSON, or not JSON-RPC.
  const bad = pick([
    () => '{',
    () => '',
    () => 'null',
    () => '[]',
    () => '[{"jsonrpc":"2.0","id":1,"method":"ddpm/info"}]',
    () => '{"jsonrpc":"1.0"}',
    () => JSON.stringify(pick(WEIRD)()),
    () => '\u0000\u0001\u0002',
    () => Buffer.from(Array.from({ length: rng.int(200) }, () => rng.int(256))).toString('latin1'),
  ])();
  return { body: bad, id: null };
}

void (async () => {
  saveTinyCheckpoint(ckpt, 20);
  await sharp({ create: { width: 28, height: 28, channels: 3, background: '#888' } })
    .png()
    .toFile(png);
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(repo, 'dist', 'sidecar.js'), '--stdio', '--backend', 'wasm'], {
    cwd: work,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  let exitCode: number | null | undefined;
  child.once('exit', (c, s) => (exitCode = c ?? (s as unknown as number)));
  const send = (body: string) =>
    new Promise<void>((r) => child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => r()));
  const pending = new Map<string, { method: string; sent: number; cancelled: boolean }>();
  const outcomes: Record<string, number> = {};
  let answered = 0;
  const internal: string[] = [];
  let peakKb = 0;
  const reader = new StreamMessageReader(child.stdout);
  reader.listen((m) => {
    const msg = m as {
      id?: number | string;
      method?: string;
      result?: unknown;
      error?: { code: number; message: string };
    };
    if (msg.method !== undefined) {
      // A notification (progress, log) or a request from the sidecar: nothing to count, but a train job is stopped.
      return;
    }
    const key = JSON.stringify(msg.id ?? null);
    const p = pending.get(key);
    if (!p) return;
    pending.delete(key);
    answered++;
    const what = msg.error ? `error ${msg.error.code}` : 'result';
    outcomes[what] = (outcomes[what] ?? 0) + 1;
    if (msg.error?.code === -32603 && internal.length < 10)
      internal.push(`${p.method}: ${msg.error.message.slice(0, 300)}`);
    // A training job that a mutated request started: stop it, so that it does not run through the fuzzing.
    const jobId = (msg.result as { jobId?: unknown } | undefined)?.jobId;
    if (p.method === 'ddpm/train' && typeof jobId === 'string') {
      const stopId = `stop-${jobId}-${Date.now()}`;
      pending.set(JSON.stringify(stopId), { method: 'ddpm/trainStop', sent: Date.now(), cancelled: false });
      requests++;
      void send(JSON.stringify({ jsonrpc: '2.0', id: stopId, method: 'ddpm/trainStop', params: { jobId } }));
    }
  });
  const memTimer = setInterval(() => {
    try {
      const hwm = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (hwm) peakKb = Math.max(peakKb, Number(hwm[1]));
    } catch {
      // gone
    }
  }, 200);
  const unanswered: string[] = [];
  let requests = 0;
  const sweep = async (final: boolean) => {
    const now = Date.now();
    for (const [key, p] of pending) {
      if (!p.cancelled && now - p.sent > 3000) {
        p.cancelled = true;
        await send(JSON.stringify({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: JSON.parse(key) } }));
      }
      if (now - p.sent > 60_000 || (final && now - p.sent > 60_000)) {
        unanswered.push(`${p.method} ${key}`);
        pending.delete(key);
      }
    }
  };
  for (let i = 0; i < N && exitCode === undefined; i++) {
    const m = message(i + 1);
    if (m.id !== null && m.method !== undefined) {
      const key = JSON.stringify(m.id);
      if (!pending.has(key)) {
        pending.set(key, { method: m.method, sent: Date.now(), cancelled: false });
        requests++;
      }
    }
    await send(m.body);
    // At most 16 requests in flight; the sweep cancels long ones.
    while (pending.size >= 16 && exitCode === undefined) {
      await new Promise((r) => setTimeout(r, 20));
      await sweep(false);
    }
    if (i % 1000 === 999) log(`${i + 1} messages: ${answered}/${requests} answered, ${pending.size} in flight`);
  }
  const deadline = Date.now() + 120_000;
  while (pending.size > 0 && exitCode === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    await sweep(true);
  }
  for (const [key, p] of pending) unanswered.push(`${p.method} ${key}`);
  // The process still answers.
  const infoId = 'final-info';
  pending.set(JSON.stringify(infoId), { method: 'ddpm/info', sent: Date.now(), cancelled: false });
  const before = answered;
  if (exitCode === undefined)
    await send(JSON.stringify({ jsonrpc: '2.0', id: infoId, method: 'ddpm/info', params: {} }));
  const infoDeadline = Date.now() + 30_000;
  while (answered === before && exitCode === undefined && Date.now() < infoDeadline)
    await new Promise((r) => setTimeout(r, 20));
  const aliveAndAnswering = exitCode === undefined && answered > before;
  clearInterval(memTimer);
  child.kill('SIGKILL');
  const result = {
    messages: N,
    requests,
    answered: answered - (aliveAndAnswering ? 1 : 0),
    outcomes,
    internalErrors: internal,
    unanswered: unanswered.length,
    unansweredExamples: unanswered.slice(0, 10),
    crashed: exitCode !== undefined && !aliveAndAnswering,
    exitCode: exitCode ?? null,
    aliveAndAnswering,
    peakMemoryMB: Math.round(peakKb / 1024),
    seconds: Math.round((Date.now() - t0) / 1000),
    stderrTail: exitCode !== undefined ? stderr.slice(-2000) : undefined,
  };
  fs.rmSync(work, { recursive: true, force: true });
  if (opts.json) console.log(JSON.stringify(result, null, 2));
  else log(JSON.stringify(result, null, 2));
  process.exitCode = result.unanswered === 0 && aliveAndAnswering ? 0 : 1;
})();
