/**
 * Overhead of streaming trajectory frames from the sidecar, and notification rates, over real JSON-RPC.
 *   npm run bench:sidecar -- [--ckpt FILE] [--n 16] [--steps 50] [--rounds 3] [--json]
 * Without --ckpt it trains a tiny model for a few steps first. Runs sampling with frames = 0, 10 and every step,
 * interleaved over rounds, and prints the median time of each and the ratio to no frames; then measures the rate of
 * ddpm/trainProgress notifications during a short training run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSidecar } from '../test/helpers/sidecarClient.ts';
import {
  SampleProgressNotification,
  SampleRequest,
  TrainProgressNotification,
  TrainRequest,
  TrainStopRequest,
} from '../sidecar/protocol.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const sc = startSidecar();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-bench-sidecar-'));
  try {
    const n = Number(arg('n', '16'));
    const steps = Number(arg('steps', '50'));
    const rounds = Number(arg('rounds', '3'));
    let ckpt = arg('ckpt', '');
    // Training notifications: rate over ~5 s of a tiny run.
    let trainNotes = 0;
    sc.connection.onNotification(TrainProgressNotification, () => trainNotes++);
    const t0 = Date.now();
    const { jobId } = await sc.connection.sendRequest(TrainRequest, {
      data: 'mnist',
      preset: 'tiny',
      steps: 1_000_000,
      batch: 1,
      out: path.join(tmp, 'run'),
      saveEvery: 0,
    });
    await new Promise((r) => setTimeout(r, 5000));
    const stop = await sc.connection.sendRequest(TrainStopRequest, { jobId });
    const trainSeconds = (Date.now() - t0) / 1000;
    if (!ckpt) ckpt = stop.checkpoint;

    let notes = 0;
    let bytes = 0;
    sc.connection.onNotification(SampleProgressNotification, (p) => {
      notes++;
      bytes += JSON.stringify(p).length;
    });
    const variants = [0, 10, steps];
    const times = new Map<number, number[]>(variants.map((v) => [v, []]));
    const counts = new Map<number, { notes: number; bytes: number }>();
    for (let r = 0; r < rounds; r++) {
      for (const frames of variants) {
        notes = 0;
        bytes = 0;
        const s0 = performance.now();
        await sc.connection.sendRequest(SampleRequest, { checkpoint: ckpt, n, steps, frames, seed: r });
        times.get(frames)!.push((performance.now() - s0) / 1000);
        counts.set(frames, { notes, bytes });
      }
    }
    const base = median(times.get(0)!);
    const rows = variants.map((f) => ({
      frames: f,
      seconds: median(times.get(f)!),
      ratio: median(times.get(f)!) / base,
      notifications: counts.get(f)!.notes,
      notificationKB: counts.get(f)!.bytes / 1024,
    }));
    const result = {
      date: new Date().toISOString(),
      checkpoint: ckpt,
      n,
      steps,
      rounds,
      sample: rows,
      train: {
        notifications: trainNotes,
        seconds: trainSeconds,
        perSecond: trainNotes / trainSeconds,
        stepsDone: stop.step,
        stepsPerSecond: stop.step / trainSeconds,
      },
    };
    if (process.argv.includes('--json')) {
      console.log(JSON.stringify(result, null, 1));
      return;
    }
    console.log(`sampling ${n} images, DDIM-${steps}, median of ${rounds} interleaved rounds (${ckpt})`);
    console.log('| frames | seconds | vs no frames | notifications | notification KB |');
    console.log('|---:|---:|---:|---:|---:|');
    for (const r of rows)
      console.log(
        `| ${r.frames} | ${r.seconds.toFixed(2)} | ${r.ratio.toFixed(3)} | ${r.notifications} | ${r.notificationKB.toFixed(0)} |`,
      );
    console.log(
      `training progress: ${trainNotes} notifications in ${trainSeconds.toFixed(1)} s = ${(trainNotes / trainSeconds).toFixed(1)}/s while training ran at ${(stop.step / trainSeconds).toFixed(1)} steps/s (limit 10/s)`,
    );
  } finally {
    await sc.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
