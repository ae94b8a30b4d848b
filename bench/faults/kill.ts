/**
 * Fault figure: kill -9 of a training process at random moments, and in the middle of checkpoint saves, N times.
 *
 *   npm run build && flock /tmp/ddpm-heavy.lock nice -n 5 node --import tsx bench/faults/kill.ts [--kills 100]
 *       [--steps 30] [--seed 1] [--json]
 *
 * First an uninterrupted reference run (`ddpm train`, tiny preset, batch 2, a checkpoint every step, all kept). Then
 * the same run in another folder, started with --resume again and again and killed with SIGKILL each time: half the
 * kills at a uniformly random moment of the process's life (start-up, steps, saves), half the moment a temporary file
 * of a checkpoint write appears (mid-save, after 0–3 ms). After each kill, latest.safetensors must load, and its
 * weights, EMA, Adam moments, step and RNG state must equal, bit for bit, the reference checkpoint of the same step.
 * As every kill is followed by a resume from that latest, and later checkpoints are compared too, an inexact resume
 * would show up as a mismatch. When a run reaches the last step, its folder is emptied and it starts over.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { CLI_BUNDLE, tinyTrainArgs } from '../../test/helpers/cli.ts';

const { values: opts } = parseArgs({
  options: {
    kills: { type: 'string', default: '100' },
    steps: { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    /** What is killed: the `ddpm train` command line, or the sidecar (dist/sidecar.js --stdio) running ddpm/train. */
    via: { type: 'string', default: 'cli' },
  },
});
const KILLS = Number(opts.kills);
const STEPS = Number(opts.steps);
const rng = new Rng(Number(opts.seed));
const repo = path.resolve(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-fault-kill-'));
const log = (m: string) => process.stderr.write(`${m}\n`);
// The CLI runs its work in a child to filter Dawn's log (sidecar/cliNativeLog.ts); DDPM_VERBOSE=1 keeps it in one
// process, so that the kill hits the process that writes the checkpoints.
const env = { ...process.env, DDPM_VERBOSE: '1' };

const args = (out: string, resume: boolean) => [
  CLI_BUNDLE,
  ...tinyTrainArgs(
    { out, steps: STEPS, batch: 2, saveEvery: 1, sampleEvery: 0 },
    '--keep',
    '10000',
    '--lr',
    '1e-3',
    '--warmup',
    '5',
    '--backend',
    'wasm',
    '--workers',
    '1',
    ...(resume ? ['--resume'] : []),
  ),
];

/** Everything a resume depends on: the tensors' bytes (all groups), the step, the RNG state. */
function fingerprint(file: string): { step: number; rng: string; tensors: Map<string, Buffer> } {
  const ck = loadCheckpoint(file);
  const tensors = new Map<string, Buffer>();
  for (const [g, m] of Object.entries(ck.groups))
    for (const [name, t] of m!)
      tensors.set(`${g}.${name}`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return { step: ck.meta.step, rng: JSON.stringify(ck.meta.rng), tensors };
}

function sameAs(a: ReturnType<typeof fingerprint>, b: ReturnType<typeof fingerprint>): string | null {
  if (a.step !== b.step) return `step ${a.step} ≠ ${b.step}`;
  if (a.rng !== b.rng) return 'RNG state differs';
  if (a.tensors.size !== b.tensors.size) return `${a.tensors.size} tensors ≠ ${b.tensors.size}`;
  for (const [k, v] of a.tensors) if (!b.tensors.get(k)?.equals(v)) return `tensor ${k} differs`;
  return null;
}

const t0 = Date.now();
const ref = path.join(work, 'reference');
const refRun = spawnSync(process.execPath, args(ref, false), { encoding: 'utf8', env });
if (refRun.status !== 0) throw new Error(`the reference run failed: ${refRun.stderr}`);
const refMs = Date.now() - t0;
const refAt = (step: number) => path.join(ref, `ckpt-${String(step).padStart(7, '0')}.safetensors`);
log(`reference: ${STEPS} steps in ${(refMs / 1000).toFixed(1)} s`);

const trial = path.join(work, 'trial');
const counts = {
  kills: 0,
  randomKills: 0,
  midSaveKills: 0,
  /** A temporary file of the killed process was left behind: the kill landed inside a write. */
  leftTempFile: 0,
  /** Killed before its first checkpoint of a fresh run: nothing to load yet (not a failure). */
  noCheckpointYet: 0,
  latestLoads: 0,
  latestExact: 0,
  failures: [] as string[],
  completedRuns: 0,
  completedExact: 0,
};

async function once(midSave: boolean): Promise<void> {
  if (process.env.DEBUG) log(`once midSave=${midSave} kills=${counts.kills}`);
  const resume = fs.existsSync(path.join(trial, 'latest.safetensors'));
  const sidecar = opts.via === 'sidecar';
  const child = sidecar
    ? spawn(process.execPath, [path.join(repo, 'dist', 'sidecar.js'), '--stdio', '--backend', 'wasm'], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env,
      })
    : spawn(process.execPath, args(trial, resume), { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  let done = false;
  void exited.then(() => (done = true));
  if (sidecar) {
    // The same run as the command line's, as a ddpm/train request; its end (ddpm/jobEnded) counts as the exit.
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'ddpm/train',
      params: {
        data: 'mnist',
        preset: 'tiny',
        steps: STEPS,
        batch: 2,
        saveEvery: 1,
        keep: 10000,
        sampleEvery: 0,
        lr: 1e-3,
        warmup: 5,
        workers: 1,
        out: trial,
        resume,
      },
    });
    child.stdin!.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-100_000);
      const ended = /"method":"ddpm\/jobEnded","params":\{[^}]*"reason":"(\w+)"/.exec(out);
      if (ended && !done) {
        done = true;
        if (ended[1] !== 'done') stderr += `job ended: ${out.slice(-1000)}`;
        child.kill('SIGKILL');
      }
    });
  }
  const pid = child.pid!;
  const tempOfChild = () => {
    try {
      return fs.readdirSync(trial).some((f) => f.includes(`.${pid}.`) && f.endsWith('.tmp'));
    } catch {
      return false;
    }
  };
  if (midSave) {
    // Poll for a temporary file of this process (a checkpoint being written); kill 0–3 ms after it appears.
    const deadline = Date.now() + refMs * 3 + 10_000;
    while (!done && !tempOfChild() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, rng.int(4)));
  } else {
    await new Promise((r) => setTimeout(r, rng.uniform() * (refMs + 500)));
  }
  if (done) {
    const code = sidecar ? (/job ended/.test(stderr) ? 1 : 0) : await exited;
    await exited;
    if (code !== 0) counts.failures.push(`a run exited ${code} by itself: ${stderr.slice(-500)}`);
    else {
      counts.completedRuns++;
      const err = sameAs(fingerprint(path.join(trial, 'latest.safetensors')), fingerprint(refAt(STEPS)));
      if (err) counts.failures.push(`completed run: ${err}`);
      else counts.completedExact++;
    }
    fs.rmSync(trial, { recursive: true, force: true });
    return;
  }
  child.kill('SIGKILL');
  await exited;
  counts.kills++;
  if (midSave) counts.midSaveKills++;
  else counts.randomKills++;
  if (tempOfChild()) counts.leftTempFile++;
  const latest = path.join(trial, 'latest.safetensors');
  if (!fs.existsSync(latest)) {
    if (resume) counts.failures.push('latest.safetensors vanished');
    else counts.noCheckpointYet++;
    return;
  }
  let fp: ReturnType<typeof fingerprint>;
  try {
    fp = fingerprint(latest);
  } catch (e) {
    counts.failures.push(`latest does not load: ${(e as Error).message}`);
    // Start over, or every later kill would count the same broken file.
    fs.rmSync(trial, { recursive: true, force: true });
    return;
  }
  counts.latestLoads++;
  const err = sameAs(fp, fingerprint(refAt(fp.step)));
  if (err) counts.failures.push(`latest (step ${fp.step}) ≠ the uninterrupted run: ${err}`);
  else counts.latestExact++;
}

void (async () => {
  try {
    while (counts.kills < KILLS) {
      await once(counts.kills % 2 === 1);
      if (counts.kills % 10 === 0 && counts.kills > 0)
        log(`${counts.kills} kills: ${counts.latestExact} exact, ${counts.failures.length} failures`);
    }
    const result = {
      via: opts.via,
      ...counts,
      steps: STEPS,
      seconds: Math.round((Date.now() - t0) / 1000),
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
    };
    if (opts.json) console.log(JSON.stringify(result, null, 2));
    else
      log(
        `${counts.kills} kills (${counts.randomKills} at random moments, ${counts.midSaveKills} mid-save; ${counts.leftTempFile} left a partial temporary file): ` +
          `latest loaded after ${counts.latestLoads}, bit-identical to the uninterrupted run after ${counts.latestExact} ` +
          `(${counts.noCheckpointYet} before the first save); ${counts.completedRuns} runs completed (${counts.completedExact} exact); ` +
          `${counts.failures.length} failures${counts.failures.length ? `:\n  ${counts.failures.join('\n  ')}` : ''}`,
      );
    process.exitCode = counts.failures.length ? 1 : 0;
  } finally {
    if (!opts.keep) fs.rmSync(work, { recursive: true, force: true });
  }
})();
