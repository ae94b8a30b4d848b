// The real sidecar process over real JSON-RPC (vscode-jsonrpc, Content-Length framing on stdio).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { sidecarSuite } from '../helpers/sidecarSuite.ts';
import { repoRoot } from '../helpers/paths.ts';
import {
  ErrorCodes,
  InfoRequest,
  InspectRequest,
  InterpolateProgressNotification,
  InterpolateRequest,
  JobEndedNotification,
  SampleProgressNotification,
  SampleRequest,
  TensorStatsRequest,
  TrainProgressNotification,
  TrainRequest,
  TrainStopRequest,
  CheckpointSavedNotification,
  EmaDiffRequest,
  type InterpolateProgressParams,
  type JobEndedParams,
  type SampleProgressParams,
  type TrainProgressParams,
} from '../../sidecar/protocol.ts';
import { encodeSafetensors } from '../../sidecar/checkpoint/safetensors.ts';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { paramSpecs, presetConfig } from '../../sidecar/ddpm/unet.ts';

const { tmp, sc } = sidecarSuite('ddpm-sidecar-');

const png = async (b64: string) => sharp(Buffer.from(b64, 'base64')).metadata();

/** An F32 tensor read straight from a safetensors file's bytes (8-byte header length, JSON header, data), not through sidecar/checkpoint. */
function readF32Tensor(file: string, name: string): { shape: number[]; values: number[] } {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const entry = header[name];
  assert.ok(entry, `${file} has no tensor ${name}`);
  assert.equal(entry.dtype, 'F32');
  const [begin, end] = entry.data_offsets.map((o) => 8 + headerLength + o);
  const values = Array.from({ length: (end - begin) / 4 }, (_, i) => bytes.readFloatLE(begin + 4 * i));
  return { shape: entry.shape, values };
}

const assertClose = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);
let checkpoint = '';

test('ddpm/info: versions, backend and presets', async () => {
  const info = await sc.connection.sendRequest(InfoRequest, {});
  assert.equal(info.protocol, 1);
  assert.equal(info.backend.name, 'wasm');
  assert.match(info.backend.device, /WebAssembly/);
  assert.equal(info.presets.find((p) => p.name === 'cifar10')?.params, 35_746_307);
  assert.equal(info.training, null);
});

test('ddpm/train: progress notifications (≤ 10/s), a stop that leaves a loadable checkpoint, jobEnded', async () => {
  const progress: TrainProgressParams[] = [];
  const ended: JobEndedParams[] = [];
  const saved: string[] = [];
  const d1 = sc.connection.onNotification(TrainProgressNotification, (p) =>
    progress.push({ ...p, ...{ at: Date.now() } }),
  );
  const d2 = sc.connection.onNotification(JobEndedNotification, (p) => ended.push(p));
  const d3 = sc.connection.onNotification(CheckpointSavedNotification, (p) => saved.push(p.path));
  const out = path.join(tmp, 'run');
  const { jobId, backend } = await sc.connection.sendRequest(TrainRequest, {
    data: 'mnist',
    preset: 'tiny',
    steps: 100000,
    batch: 2,
    out,
    saveEvery: 10,
    lr: 1e-3,
    warmup: 5,
  });
  assert.match(jobId, /^[0-9a-f-]{36}$/);
  assert.equal(backend.name, 'wasm');
  assert.match(backend.device, /WebAssembly SIMD/);
  await assert.rejects(
    sc.connection.sendRequest(TrainRequest, {
      data: 'mnist',
      preset: 'tiny',
      steps: 5,
      batch: 2,
      out: path.join(tmp, 'other'),
    }),
    (e: ResponseError<void>) => e.code === ErrorCodes.JobRunning,
  );
  // Sampling and inspection are served while training runs.
  while (saved.length === 0) await new Promise((r) => setTimeout(r, 100));
  const during = await sc.connection.sendRequest(SampleRequest, { checkpoint: saved[0], n: 2, steps: 3 });
  assert.equal(during.images.length, 2);
  const info = await sc.connection.sendRequest(InfoRequest, {});
  assert.equal(info.training?.jobId, jobId);
  await new Promise((r) => setTimeout(r, 1500));
  const stop = await sc.connection.sendRequest(TrainStopRequest, { jobId });
  assert.ok(stop.step > 10, `stopped at ${stop.step}`);
  await new Promise((r) => setTimeout(r, 100));
  d1.dispose();
  d2.dispose();
  d3.dispose();
  assert.equal(ended.length, 1);
  assert.equal(ended[0].reason, 'stopped');
  assert.equal(ended[0].step, stop.step);
  assert.ok(progress.length >= 3);
  // tiny stays on one thread under workers: 'auto' (too small to gain from more).
  assert.deepEqual([...new Set(progress.map((p) => p.threads))], [1]);
  const steps = progress.map((p) => p.step);
  assert.deepEqual(
    steps,
    [...steps].sort((a, b) => a - b),
  );
  // The rate limit: at most 10 per second (measured over the run, with slack for timer granularity).
  const times = progress.map((p) => (p as unknown as { at: number }).at);
  const span = (times[times.length - 1] - times[0]) / 1000;
  assert.ok(progress.length <= 10 * span + 2, `${progress.length} notifications in ${span.toFixed(2)} s`);
  const inspect = await sc.connection.sendRequest(InspectRequest, { path: stop.checkpoint });
  assert.equal(inspect.step, stop.step);
  assert.equal(inspect.format, 'ddpm-studio/1');
  checkpoint = stop.checkpoint;
  await assert.rejects(
    sc.connection.sendRequest(TrainStopRequest, { jobId }),
    (e: ResponseError<void>) => e.code === ErrorCodes.NoSuchJob,
  );
});

test('ddpm/train with workers: 2 reports the two threads that computed each step', async () => {
  const progress: TrainProgressParams[] = [];
  const ended: JobEndedParams[] = [];
  const d1 = sc.connection.onNotification(TrainProgressNotification, (p) => progress.push(p));
  const d2 = sc.connection.onNotification(JobEndedNotification, (p) => ended.push(p));
  try {
    await sc.connection.sendRequest(TrainRequest, {
      data: 'mnist',
      preset: 'tiny',
      steps: 3,
      batch: 4,
      out: path.join(tmp, 'threads'),
      workers: 2,
      saveEvery: 0,
    });
    while (ended.length === 0) await new Promise((r) => setTimeout(r, 50));
  } finally {
    d1.dispose();
    d2.dispose();
  }
  assert.equal(ended[0].reason, 'done', ended[0].error);
  assert.equal(progress.at(-1)?.step, 3);
  assert.deepEqual([...new Set(progress.map((p) => p.threads))], [2]);
});

test('ddpm/sample: trajectory frames stream in order, and the PNGs have the right size', async () => {
  const notes: SampleProgressParams[] = [];
  const d = sc.connection.onNotification(SampleProgressNotification, (p) => p.token === 'traj' && notes.push(p));
  const r = await sc.connection.sendRequest(SampleRequest, {
    checkpoint,
    n: 4,
    sampler: 'ddim',
    steps: 10,
    frames: 5,
    seed: 3,
    token: 'traj',
  });
  d.dispose();
  assert.equal(r.images.length, 4);
  assert.equal(r.imageSize, 28);
  const m = await png(r.images[0]);
  assert.deepEqual([m.width, m.height], [28, 28]);
  const g = await png(r.grid);
  assert.deepEqual([g.width, g.height], [2 * 28 + 3 * 2, 2 * 28 + 3 * 2]);
  const steps = notes.filter((n) => !n.frame);
  const frames = notes.filter((n) => n.frame);
  assert.deepEqual(
    steps.map((s) => s.step),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  // DDIM's default spacing is "trailing": from pure noise at T − 1.
  assert.deepEqual(
    steps.map((s) => s.t),
    [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
  );
  assert.equal(frames.length, 5);
  assert.deepEqual(
    frames.map((f) => f.frame!.index),
    [...frames.map((f) => f.frame!.index)].sort((a, b) => a - b),
  );
  for (const f of frames) {
    const xt = await png(f.frame!.xt);
    const x0 = await png(f.frame!.x0);
    assert.deepEqual([xt.width, xt.height, x0.width, x0.height], [62, 62, 62, 62]);
  }
  const again = await sc.connection.sendRequest(SampleRequest, {
    checkpoint,
    n: 4,
    sampler: 'ddim',
    steps: 10,
    seed: 3,
  });
  assert.deepEqual(again.images, r.images, 'same seed, same images (with or without frames)');
  // The tiny model samples on one thread by default; asked for two, it uses a worker thread for half the batch
  // and draws the same images.
  assert.equal(r.threads, 1);
  const threaded = await sc.connection.sendRequest(SampleRequest, {
    checkpoint,
    n: 4,
    sampler: 'ddim',
    steps: 10,
    seed: 3,
    workers: 2,
  });
  assert.equal(threaded.threads, 2);
  assert.deepEqual(threaded.images, r.images, 'same seed, same images on two threads');
});

test('cancellation mid-sample answers RequestCancelled within a step', async () => {
  const source = new CancellationTokenSource();
  let seen = 0;
  const d = sc.connection.onNotification(SampleProgressNotification, (p) => {
    if (p.token !== 'cancel') return;
    seen++;
    if (p.step === 3) source.cancel();
  });
  await assert.rejects(
    sc.connection.sendRequest(SampleRequest, { checkpoint, n: 2, sampler: 'ddpm', token: 'cancel' }, source.token),
    (e: ResponseError<void>) => e.code === ErrorCodes.RequestCancelled,
  );
  d.dispose();
  assert.ok(seen >= 4 && seen < 10, `${seen} steps ran`);
  const info = await sc.connection.sendRequest(InfoRequest, {});
  assert.equal(info.backend.name, 'wasm', 'still alive');
});

test('ddpm/interpolate two generated PNGs; inspect and tensorStats on ours and on a foreign file', async () => {
  const r = await sc.connection.sendRequest(SampleRequest, { checkpoint, n: 2, steps: 5, seed: 1 });
  const a = path.join(tmp, 'a.png');
  const b = path.join(tmp, 'b.png');
  fs.writeFileSync(a, Buffer.from(r.images[0], 'base64'));
  fs.writeFileSync(b, Buffer.from(r.images[1], 'base64'));
  const progress: InterpolateProgressParams[] = [];
  const sub = sc.connection.onNotification(
    InterpolateProgressNotification,
    (p) => p.token === 'lerp' && progress.push(p),
  );
  const it = await sc.connection.sendRequest(InterpolateRequest, {
    checkpoint,
    imageA: a,
    imageB: b,
    t: 200,
    lambdas: [0, 0.5, 1],
    steps: 5,
    token: 'lerp',
  });
  sub.dispose();
  assert.equal(it.images.length, 3);
  // The three λ are denoised together: DDIM from t = 200 on the 5-step grid visits 200, 0 → 2 steps, in order.
  assert.deepEqual(
    progress.map((p) => [p.step, p.total]),
    [
      [0, 2],
      [1, 2],
    ],
  );
  // On two threads (the λ split between them): the same strip.
  const threaded = await sc.connection.sendRequest(InterpolateRequest, {
    checkpoint,
    imageA: a,
    imageB: b,
    t: 200,
    lambdas: [0, 0.5, 1],
    steps: 5,
    workers: 2,
  });
  assert.deepEqual(threaded.images, it.images);
  const strip = await png(it.strip);
  assert.deepEqual([strip.width, strip.height], [5 * 28 + 6 * 2, 28 + 4]);

  const diff = await sc.connection.sendRequest(EmaDiffRequest, { path: checkpoint });
  assert.ok(diff && diff.relative > 0 && diff.relative < 1, `EMA vs raw: ${diff?.relative}`);
  assert.equal(diff.top.length, 10);
  assert.ok(diff.top[0].relative >= diff.top[9].relative);

  const stats = await sc.connection.sendRequest(TensorStatsRequest, {
    path: checkpoint,
    name: 'model.conv_in.weight',
    bins: 10,
  });
  // The same statistics computed here from the file's bytes.
  const { shape, values } = readF32Tensor(checkpoint, 'model.conv_in.weight');
  assert.deepEqual(shape, [3, 3, 1, 16]);
  assert.equal(values.length, 3 * 3 * 1 * 16);
  assert.equal(stats.dtype, 'F32');
  assert.deepEqual(stats.shape, shape);
  assert.equal(stats.count, values.length);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  assert.ok(std > 0 && max > min, 'trained weights are not all equal');
  assert.equal(stats.min, min);
  assert.equal(stats.max, max);
  assertClose(stats.mean, mean, 'mean');
  assertClose(stats.std, std, 'std');
  // 10 equal bins from min to max, the last one closed.
  const edges = Array.from({ length: 11 }, (_, i) => min + ((max - min) * i) / 10);
  assert.equal(stats.histogram.edges.length, 11);
  stats.histogram.edges.forEach((e, i) => assertClose(e, edges[i], `edge ${i}`));
  const counts = edges
    .slice(0, 10)
    .map((lo, i) => values.filter((v) => v >= lo && (i === 9 ? v <= max : v < edges[i + 1])).length);
  assert.deepEqual(stats.histogram.counts, counts);
  assert.equal(
    counts.reduce((x, y) => x + y, 0),
    values.length,
  );

  const foreign = path.join(tmp, 'foreign.safetensors');
  fs.writeFileSync(
    foreign,
    Buffer.concat(
      encodeSafetensors(
        [{ name: 'encoder.layer.0.weight', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
        { format: 'pt' },
      ),
    ),
  );
  const fi = await sc.connection.sendRequest(InspectRequest, { path: foreign });
  assert.equal(fi.format, null);
  assert.equal(fi.params, 6);
  assert.deepEqual(fi.tensors, [{ name: 'encoder.layer.0.weight', dtype: 'F32', shape: [2, 3] }]);
  const fs6 = await sc.connection.sendRequest(TensorStatsRequest, {
    path: foreign,
    name: 'encoder.layer.0.weight',
    bins: 5,
  });
  assert.deepEqual([fs6.count, fs6.min, fs6.max, fs6.mean], [6, 1, 6, 3.5]);
  assertClose(fs6.std, Math.sqrt(17.5 / 6), 'std of 1…6');
  assert.deepEqual(fs6.histogram.edges, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(fs6.histogram.counts, [1, 1, 1, 1, 2]);
  await assert.rejects(
    sc.connection.sendRequest(SampleRequest, { checkpoint: foreign, n: 1 }),
    (e: ResponseError<void>) => e.code === ErrorCodes.BadInput && /not a DDPM Studio checkpoint/.test(e.message),
  );
});

test('a model too large for the wasm backend: a clear error, and the sidecar keeps serving', async () => {
  // The tiny preset's weights for 1024×1024 images: a forward pass would need ~3 GiB per image of wasm's 4 GiB heap.
  const config = presetConfig('tiny', { imageSize: 1024, attnResolutions: [] });
  const file = path.join(tmp, 'huge.safetensors');
  const model = new Map(
    paramSpecs(config).map((sp) => [
      sp.name,
      { shape: sp.shape, data: new Float32Array(sp.shape.reduce((a, b) => a * b, 1)) },
    ]),
  );
  saveCheckpoint(file, {
    meta: {
      format: CHECKPOINT_FORMAT,
      kind: 'weights',
      model: config,
      schedule: makeSchedule().config,
      step: 0,
      seed: 0,
      created: new Date().toISOString(),
    },
    groups: { model },
  });
  await assert.rejects(
    sc.connection.sendRequest(SampleRequest, { checkpoint: file, n: 1, steps: 2 }),
    (e: ResponseError<void>) =>
      e.code === ErrorCodes.BackendUnavailable && /needs about 3\.0 GiB per image for a forward pass/.test(e.message),
  );
  const after = await sc.connection.sendRequest(SampleRequest, { checkpoint, n: 1, steps: 2 });
  assert.equal(after.images.length, 1);
});

test('22 malformed requests get errors naming the field, and the process stays up', async () => {
  const bad: [string, unknown, number, RegExp][] = [
    ['ddpm/sample', {}, ErrorCodes.InvalidParams, /missing field 'checkpoint'/],
    ['ddpm/sample', { checkpoint: 5 }, ErrorCodes.InvalidParams, /field 'checkpoint' must be a non-empty string/],
    ['ddpm/sample', { checkpoint, n: 0 }, ErrorCodes.InvalidParams, /field 'n'/],
    ['ddpm/sample', { checkpoint, n: 2.5 }, ErrorCodes.InvalidParams, /field 'n'/],
    [
      'ddpm/sample',
      { checkpoint, sampler: 'euler' },
      ErrorCodes.InvalidParams,
      /field 'sampler' must be one of ddim, ddpm/,
    ],
    ['ddpm/sample', { checkpoint, eta: 'x' }, ErrorCodes.InvalidParams, /field 'eta'/],
    ['ddpm/sample', { checkpoint, workers: 0 }, ErrorCodes.InvalidParams, /field 'workers'/],
    ['ddpm/sample', { checkpoint: path.join(tmp, 'nope.safetensors') }, ErrorCodes.NotFound, /checkpoint not found/],
    ['ddpm/sample', [1, 2], ErrorCodes.InvalidParams, /params must be an object/],
    ['ddpm/train', {}, ErrorCodes.InvalidParams, /missing field 'data'/],
    [
      'ddpm/train',
      { data: 'mnist', preset: 'huge', steps: 1, batch: 1, out: tmp },
      ErrorCodes.InvalidParams,
      /field 'preset' must be one of/,
    ],
    [
      'ddpm/train',
      { data: 'mnist', preset: 'tiny', steps: -1, batch: 1, out: tmp },
      ErrorCodes.InvalidParams,
      /field 'steps'/,
    ],
    [
      'ddpm/train',
      { data: 'mnist', preset: 'tiny', steps: 1, batch: 1, out: tmp, workers: 0 },
      ErrorCodes.InvalidParams,
      /field 'workers'/,
    ],
    [
      'ddpm/train',
      { data: 'imagenet', preset: 'tiny', steps: 1, batch: 1, out: path.join(tmp, 'x') },
      ErrorCodes.BadInput,
      /unknown data source 'imagenet'/,
    ],
    [
      'ddpm/train',
      { data: `folder:${path.join(tmp, 'missing')}`, preset: 'tiny', steps: 1, batch: 1, out: path.join(tmp, 'y') },
      ErrorCodes.NotFound,
      /no such folder/,
    ],
    ['ddpm/trainStop', { jobId: 'nope' }, ErrorCodes.NoSuchJob, /no running training job/],
    ['ddpm/inspect', {}, ErrorCodes.InvalidParams, /missing field 'path'/],
    ['ddpm/inspect', { path: path.join(tmp, 'a.png') }, ErrorCodes.BadInput, /not a valid safetensors file/],
    ['ddpm/tensorStats', { path: checkpoint, name: 'model.nope' }, ErrorCodes.NotFound, /has no tensor 'model.nope'/],
    [
      'ddpm/interpolate',
      { checkpoint, imageA: path.join(tmp, 'a.png'), imageB: checkpoint },
      ErrorCodes.BadInput,
      /not a readable image/,
    ],
    [
      'ddpm/interpolate',
      { checkpoint, imageA: 'x', imageB: 'y', lambdas: [2] },
      ErrorCodes.InvalidParams,
      /field 'lambdas'/,
    ],
    ['ddpm/unknownMethod', {}, -32601, /Unhandled method/],
  ];
  assert.equal(bad.length, 22);
  for (const [method, params, code, re] of bad) {
    await assert.rejects(sc.connection.sendRequest(method, params), (e: ResponseError<void>) => {
      assert.equal(e.code, code, `${method} ${JSON.stringify(params)}: ${e.code} ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.equal(sc.child.exitCode, null);
  assert.equal((await sc.connection.sendRequest(InfoRequest, {})).protocol, 1);
});

test('a cifar10-sized training checkpoint (weights, EMA, Adam: ~570 MB) opens in well under a second', async () => {
  const { paramSpecs, presetConfig } = await import('../../sidecar/ddpm/unet.ts');
  const specs = paramSpecs(presetConfig('cifar10'));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt-like' } };
  let offset = 0;
  for (const g of ['model', 'ema', 'adam.m', 'adam.v']) {
    for (const s of specs) {
      const bytes = s.shape.reduce((a, b) => a * b, 1) * 4;
      header[`${g}.${s.name}`] = { dtype: 'F32', shape: s.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(tmp, 'big.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json]));
  fs.truncateSync(file, 8 + json.length + offset); // sparse: the data section reads as zeros
  const t0 = performance.now();
  const r = await sc.connection.sendRequest(InspectRequest, { path: file });
  const ms = performance.now() - t0;
  assert.equal(r.tensors.length, 4 * specs.length);
  assert.equal(r.params, 4 * 35_746_307);
  assert.ok(ms < 1000, `inspect took ${ms.toFixed(0)} ms`);
  const st = await sc.connection.sendRequest(TensorStatsRequest, { path: file, name: 'ema.up.1.res.0.conv1.weight' });
  assert.equal(st.count, 3 * 3 * 512 * 256);
  assert.equal(st.std, 0);
});

test('the documented example client (docs/example-client.mjs) works as written', async () => {
  const { spawnSync } = await import('node:child_process');
  const out = path.join(tmp, 'example.png');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'docs', 'example-client.mjs'), checkpoint, out], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /sidecar 0\.1\.0 on \w+/);
  assert.match(r.stdout, /wrote .*example\.png \(4 images/);
  const m = await png(fs.readFileSync(out).toString('base64'));
  assert.deepEqual([m.width, m.height], [62, 62]);
});
