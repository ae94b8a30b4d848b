/**
 * Fault figure: the disk fills up during checkpoint saves.
 *
 *   npm run build && sudo flock /tmp/ddpm-heavy.lock nice -n 5 node --import tsx bench/faults/diskFull.ts
 *       [--trials 20] [--seed 1] [--json]
 *
 * Needs root (it mounts a small tmpfs; a loop-mounted ext4 image where tmpfs is not allowed). Each trial trains the
 * tiny preset for 2 steps into the small filesystem (a checkpoint every step), fills the filesystem so that only
 * a random amount of space is left (0 to two checkpoints' worth), and resumes for 4 more steps: a save runs out of
 * space — while writing the new ckpt-N, or while replacing latest.safetensors. Then: the process must have exited
 * (no hang) with an error that says the disk is full, latest.safetensors must load and be the last checkpoint that
 * was completely written (the previous one, bit for bit, or a later one that fit), and no temporary file may be
 * left behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { CLI_BUNDLE, tinyTrainArgs } from '../../test/helpers/cli.ts';

const { values: opts } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const TRIALS = Number(opts.trials);
const rng = new Rng(Number(opts.seed));
const log = (m: string) => process.stderr.write(`${m}\n`);
const env = { ...process.env, DDPM_VERBOSE: '1' };
const SIZE_MB = 12;

const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-fault-full-'));
let how = 'tmpfs';
if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', mnt]).status !== 0) {
  // No tmpfs: a loop-mounted ext4 image.
  const img = `${mnt}.img`;
  spawnSync('truncate', ['-s', `${SIZE_MB}M`, img]);
  spawnSync('mkfs.ext4', ['-q', img]);
  if (spawnSync('mount', ['-o', 'loop', img, mnt]).status !== 0) {
    log('cannot mount a small filesystem here (needs root)');
    process.exit(2);
  }
  how = 'ext4 loop image';
}

const train = (out: string, steps: number, resume: boolean) =>
  spawnSync(
    process.execPath,
    [
      CLI_BUNDLE,
      ...tinyTrainArgs(
        { out, steps, batch: 2, saveEvery: 1, sampleEvery: 0 },
        '--keep',
        '1',
        '--backend',
        'wasm',
        '--workers',
        '1',
        ...(resume ? ['--resume'] : []),
      ),
    ],
    { encoding: 'utf8', env, timeout: 300_000 },
  );

const freeBytes = (dir: string) => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};

const counts = {
  trials: 0,
  saveFailed: 0,
  clearError: 0,
  hung: 0,
  latestLoads: 0,
  latestIsLastComplete: 0,
  tempFilesLeft: 0,
  failures: [] as string[],
  exampleError: '',
};

const t0 = Date.now();
try {
  for (let i = 0; i < TRIALS; i++) {
    const out = path.join(mnt, 'run');
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(path.join(mnt, 'filler'), { force: true });
    const first = train(out, 2, false);
    if (first.status !== 0) throw new Error(`the first 2 steps failed: ${first.stderr}`);
    const latest = path.join(out, 'latest.safetensors');
    const ckSize = fs.statSync(latest).size;
    // Leave 0 to 2 checkpoints' worth of space.
    const leave = Math.floor(rng.uniform() * 2 * ckSize);
    const fill = Math.max(0, freeBytes(mnt) - leave);
    const fd = fs.openSync(path.join(mnt, 'filler'), 'w');
    const block = Buffer.alloc(1 << 20, 1);
    for (let w = 0; w < fill;) {
      try {
        w += fs.writeSync(fd, block, 0, Math.min(block.length, fill - w));
      } catch {
        break;
      }
    }
    fs.closeSync(fd);
    const before = fs.readFileSync(latest);
    const r = train(out, 6, true);
    counts.trials++;
    if (r.error) {
      counts.hung++;
      counts.failures.push(`trial ${i}: ${r.error.message}`);
      continue;
    }
    const failed = r.status !== 0;
    if (failed) counts.saveFailed++;
    if (failed && /no space left on the disk to write .*nothing was replaced/.test(r.stderr)) {
      counts.clearError++;
      counts.exampleError ||= (r.stderr.split('\n').find((l) => l.includes('no space left')) ?? '').replace(
        mnt,
        '<fs>',
      );
    } else if (failed) counts.failures.push(`trial ${i}: unclear error: ${r.stderr.slice(-600)}`);
    const temps = fs.readdirSync(out).filter((f) => f.endsWith('.tmp'));
    if (temps.length) {
      counts.tempFilesLeft++;
      counts.failures.push(`trial ${i}: temporary files left: ${temps.join(', ')}`);
    }
    try {
      const ck = loadCheckpoint(latest);
      counts.latestLoads++;
      // The last complete checkpoint: the previous latest unless a later save fit.
      const ckpts = fs
        .readdirSync(out)
        .filter((f) => /^ckpt-\d+\.safetensors$/.test(f))
        .sort();
      const newest = ckpts.length ? loadCheckpoint(path.join(out, ckpts[ckpts.length - 1])).meta.step : 2;
      const same = fs.readFileSync(latest).equals(before);
      if ((ck.meta.step === 2 && same) || (ck.meta.step > 2 && ck.meta.step <= newest)) counts.latestIsLastComplete++;
      else counts.failures.push(`trial ${i}: latest is step ${ck.meta.step}, newest complete ckpt ${newest}`);
    } catch (e) {
      counts.failures.push(`trial ${i}: latest does not load: ${(e as Error).message}`);
    }
    log(`trial ${i}: left ${(leave / 2 ** 20).toFixed(2)} MB, exit ${r.status}`);
  }
} finally {
  spawnSync('umount', [mnt]);
  fs.rmSync(mnt, { recursive: true, force: true });
  fs.rmSync(`${mnt}.img`, { force: true });
}
const result = { ...counts, filesystem: `${how}, ${SIZE_MB} MB`, seconds: Math.round((Date.now() - t0) / 1000) };
if (opts.json) console.log(JSON.stringify(result, null, 2));
else log(JSON.stringify(result, null, 2));
process.exitCode = counts.failures.length ? 1 : 0;
