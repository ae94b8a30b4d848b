// diffusers UNet2DModel import and export (sidecar/interop/, sidecar/jobs/importModel.ts) against the fixture of
// test/fixtures/diffusers/ (a copy of ../shared/golden/diffusers/: outputs computed by diffusers itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkDiffusersFolder, nchwToNhwc } from '../../scripts/diffusersIo.ts';
import { loadCheckpoint, saveCheckpoint, CHECKPOINT_FORMAT } from '../../sidecar/checkpoint/checkpoint.ts';
import { readHeader, readTensorF32 } from '../../sidecar/checkpoint/safetensors.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../sidecar/checkpoint/float16.ts';
import { DEFAULT_SCHEDULE } from '../../sidecar/ddpm/schedule.ts';
import { countParams, paramSpecs, presetConfig, UNet, unetForward, type UNetConfig } from '../../sidecar/ddpm/unet.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import {
  diffusersConfigFromUnet,
  diffusersSchedulerConfig,
  scheduleFromDiffusers,
  unetConfigFromDiffusers,
} from '../../sidecar/interop/diffusersConfig.ts';
import { readDiffusersModel, WEIGHTS_FILE } from '../../sidecar/interop/diffusersFolder.ts';
import { diffusersKeyPairs } from '../../sidecar/interop/diffusersWeights.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { exportDiffusers, importDiffusers } from '../../sidecar/jobs/importModel.ts';
import { inspectCheckpoint } from '../../sidecar/jobs/inspect.ts';
import { modelCard } from '../../webview/checkpoint/modelCard.ts';
import { repoRoot } from '../helpers/paths.ts';

const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'diffusers');
const SMALL = path.join(FIXTURE, 'small');
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
const smallConfig = () => readJson(path.join(SMALL, 'config.json'));
const io = readJson(path.join(SMALL, 'io.json')) as {
  x_nhwc: number[];
  x_shape_nhwc: [number, number, number, number];
  timesteps: number[];
  output_nhwc: number[];
  tolerance: { abs: number };
};

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-diffusers-'));
}

/** A copy of the small model with its tensors rewritten by `edit` (name, dtype and bytes of each). */
function rewrittenCopy(
  edit: (name: string, data: Float32Array) => { name: string; bytes: Buffer; dtype: string } | null,
  config: Record<string, unknown> = smallConfig(),
): string {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const header = readHeader(path.join(SMALL, WEIGHTS_FILE));
  const json: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const parts: Buffer[] = [];
  let off = 0;
  for (const e of header.tensors) {
    const r = edit(e.name, readTensorF32(header, e));
    if (!r) continue;
    json[r.name] = { dtype: r.dtype, shape: e.shape, data_offsets: [off, off + r.bytes.length] };
    parts.push(r.bytes);
    off += r.bytes.length;
  }
  const h = Buffer.from(JSON.stringify(json));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(path.join(dir, WEIGHTS_FILE), Buffer.concat([len, h, ...parts]));
  return dir;
}

const f32Bytes = (d: Float32Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);

async function forward(config: UNetConfig, weights: Map<string, { shape: number[]; data: Float32Array }>) {
  const params = new Map([...weights].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  const x = tf.tensor4d(io.x_nhwc, io.x_shape_nhwc);
  const y = unetForward(params, config, x, io.timesteps, { training: false });
  const out = (await y.data()) as Float32Array;
  tf.dispose([x, y, ...params.values()]);
  return out;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('the small diffusers model: our forward pass equals diffusers within 1e-5, one head and heads of 8 channels', async () => {
  const before = tf.memory().numTensors;
  const results = await checkDiffusersFolder(SMALL);
  assert.deepEqual(
    results.map((r) => [r.name, r.headDim]),
    [
      ['main', null],
      ['attention_head_dim_8', 8],
    ],
  );
  for (const r of results) assert.ok(r.ok && r.maxAbs < 1e-5, `${r.name}: max |Δ| ${r.maxAbs}`);
  assert.equal(tf.memory().numTensors, before);
  // The two cases differ by 0.028 (io.json): a model that ignored the heads would fail the second.
  const extra = (readJson(path.join(SMALL, 'io.json')).extra_cases as { output_nchw: number[] }[])[0];
  const shapeNchw = [2, 3, 16, 16];
  assert.ok(maxAbsDiff(nchwToNhwc(extra.output_nchw, shapeNchw), io.output_nhwc) > 0.02);
});

test('the time embedding and its conversion: freq_shift 1 and sin first, as the paper', () => {
  const m = readDiffusersModel(SMALL);
  assert.equal(m.config.timeFreqShift, undefined);
  assert.equal(m.config.timeFlipSinToCos, undefined);
  assert.deepEqual(m.dtypes, ['F32']);
  assert.equal(m.attentionNaming, 'to_q/to_k/to_v/to_out.0');
  assert.deepEqual(m.config, {
    imageSize: 16,
    channels: 3,
    ch: 8,
    chMult: [1, 2, 2, 2],
    numResBlocks: 2,
    attnResolutions: [8],
    dropout: 0,
    groups: 4,
  });
  assert.equal(countParams(paramSpecs(m.config)), 143_267);
});

test('the 2022 attention names (query/key/value/proj_attn) load the same weights', () => {
  const legacy: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
  const dir = rewrittenCopy((name, data) => ({
    name: name.replace(/\.(to_q|to_k|to_v|to_out\.0)\./, (_m, k: string) => `.${legacy[k]}.`),
    bytes: f32Bytes(data),
    dtype: 'F32',
  }));
  const a = readDiffusersModel(SMALL);
  const b = readDiffusersModel(dir);
  assert.equal(b.attentionNaming, 'query/key/value/proj_attn');
  assert.equal(b.weights.size, a.weights.size);
  for (const [k, v] of a.weights) assert.deepEqual(b.weights.get(k)?.data, v.data, k);
});

test('F16 and BF16 weights: converted exactly, and the forward pass stays close to diffusers', async () => {
  const f16 = rewrittenCopy((name, data) => {
    const b = Buffer.alloc(data.length * 2);
    data.forEach((v, i) => b.writeUInt16LE(float32ToFloat16(v), i * 2));
    return { name, bytes: b, dtype: 'F16' };
  });
  const bf16 = rewrittenCopy((name, data) => {
    const bits = new Uint32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    const b = Buffer.alloc(data.length * 2);
    bits.forEach((v, i) => b.writeUInt16LE(v >>> 16, i * 2)); // truncation: a valid bfloat16 of each value
    return { name, bytes: b, dtype: 'BF16' };
  });
  const ref = readDiffusersModel(SMALL);
  const h = readDiffusersModel(f16);
  const bf = readDiffusersModel(bf16);
  assert.deepEqual(h.dtypes, ['F16']);
  assert.deepEqual(bf.dtypes, ['BF16']);
  for (const [k, v] of ref.weights) {
    const hv = h.weights.get(k)!.data;
    const bv = bf.weights.get(k)!.data;
    for (let i = 0; i < v.data.length; i++) {
      assert.equal(hv[i], float16ToFloat32(float32ToFloat16(v.data[i])));
      const t = new Float32Array([v.data[i]]);
      new Uint32Array(t.buffer)[0] &= 0xffff0000;
      assert.equal(bv[i], t[0]);
    }
  }
  // Reduced precision weights give nearby (not equal) outputs; full precision within the fixture's 1e-5.
  const yh = await forward(h.config, h.weights);
  const yb = await forward(bf.config, bf.weights);
  const eh = maxAbsDiff(yh, io.output_nhwc);
  const eb = maxAbsDiff(yb, io.output_nhwc);
  assert.ok(eh > io.tolerance.abs && eh < 0.02, `F16 max |Δ| ${eh}`);
  assert.ok(eb > eh && eb < 0.1, `BF16 max |Δ| ${eb}`);
});

test('a pipeline folder (unet/, scheduler/) and the weights file itself import too', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'unet'));
  fs.mkdirSync(path.join(dir, 'scheduler'));
  for (const f of ['config.json', WEIGHTS_FILE]) fs.copyFileSync(path.join(SMALL, f), path.join(dir, 'unet', f));
  fs.writeFileSync(
    path.join(dir, 'scheduler', 'scheduler_config.json'),
    JSON.stringify({
      _class_name: 'DDPMScheduler',
      beta_end: 0.02,
      beta_schedule: 'linear',
      beta_start: 0.0001,
      clip_sample: true,
      num_train_timesteps: 1000,
      trained_betas: null,
      variance_type: 'fixed_small',
    }),
  );
  for (const p of [dir, path.join(dir, 'unet', WEIGHTS_FILE)]) {
    const m = readDiffusersModel(p);
    assert.equal(m.files.scheduler, path.join(dir, 'unet', '..', 'scheduler', 'scheduler_config.json'));
    assert.deepEqual(m.schedule.sampling, { varianceType: 'fixedsmall', clip: true });
    assert.deepEqual(m.schedule.notes, []);
  }
  // No scheduler config at all: DDPMScheduler's defaults, said so.
  const bare = readDiffusersModel(SMALL);
  assert.deepEqual(bare.schedule.schedule, { ...DEFAULT_SCHEDULE, cosineS: 0.008, maxBeta: 0.999 });
  assert.match(bare.schedule.notes[0], /no scheduler_config\.json: DDPMScheduler's defaults/);
});

test('unsupported configs and folders: an error naming the field or the file', () => {
  const bad = (override: Record<string, unknown>, field: RegExp) =>
    assert.throws(
      () => unetConfigFromDiffusers({ ...smallConfig(), ...override }, 'config.json'),
      (e: Error) => e.name === 'UnsupportedConfigError' && field.test(e.message) && classifyError(e) === 'bad-input',
    );
  bad({ time_embedding_type: 'fourier' }, /unsupported time_embedding_type: "fourier"/);
  bad({ resnet_time_scale_shift: 'scale_shift' }, /unsupported resnet_time_scale_shift/);
  bad(
    { down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'] },
    /unsupported down_block_types\[1\]: "CrossAttnDownBlock2D"/,
  );
  bad({ up_block_types: ['UpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'] }, /up_block_types\[2\].*does not mirror/);
  bad({ downsample_padding: 1 }, /unsupported downsample_padding: 1/);
  bad({ norm_eps: 1e-5 }, /unsupported norm_eps/);
  bad({ num_class_embeds: 10 }, /unsupported num_class_embeds/);
  bad({ cross_attention_dim: 768 }, /unsupported cross_attention_dim/);
  bad({ attention_head_dim: 5 }, /attnHeadDim 5 does not divide/);
  bad({ block_out_channels: [8, 12, 16, 16] }, /unsupported block_out_channels.*multiple of the first/);
  bad({ _class_name: 'UNet2DConditionModel' }, /unsupported _class_name/);
  // diffusers' own defaults apply to absent keys: without norm_eps it is 1e-5, which we cannot run.
  const { norm_eps: _eps, ...noEps } = smallConfig();
  assert.throws(() => unetConfigFromDiffusers(noEps), /norm_eps: 0\.00001/);
  assert.throws(() => scheduleFromDiffusers({ variance_type: 'learned_range' }), /unsupported variance_type/);
  assert.throws(() => scheduleFromDiffusers({ prediction_type: 'v_prediction' }), /unsupported prediction_type/);
  assert.throws(() => scheduleFromDiffusers({ beta_schedule: 'scaled_linear' }), /unsupported beta_schedule/);
  assert.equal(scheduleFromDiffusers({ beta_schedule: 'squaredcos_cap_v2' }).schedule.kind, 'cosine');

  // Weights that do not fit the config, a .bin that is not torch.save's, no config.
  const missing = rewrittenCopy((name, data) =>
    name === 'mid_block.attentions.0.to_q.weight' ? null : { name, bytes: f32Bytes(data), dtype: 'F32' },
  );
  assert.throws(
    () => readDiffusersModel(missing),
    /no tensor 'mid_block\.attentions\.0\.to_q\.weight' \(nor its 2022 name 'mid_block\.attentions\.0\.query\.weight'\)/,
  );
  const extra = rewrittenCopy((name, data) => ({ name, bytes: f32Bytes(data), dtype: 'F32' }), {
    ...smallConfig(),
    layers_per_block: 1,
  });
  assert.throws(() => readDiffusersModel(extra), /tensor .* is \[|does not use/);
  const pickle = tmpDir();
  fs.copyFileSync(path.join(SMALL, 'config.json'), path.join(pickle, 'config.json'));
  fs.writeFileSync(path.join(pickle, 'diffusion_pytorch_model.bin'), 'not read');
  // A .bin that is not torch.save's zip (a legacy pickle, or junk) is refused, never unpickled.
  assert.throws(
    () => readDiffusersModel(pickle),
    (e: Error) => /is not a PyTorch zip checkpoint/.test(e.message) && classifyError(e) === 'bad-input',
  );
  assert.throws(() => readDiffusersModel(tmpDir()), /is not a diffusers model: it has no config\.json/);
});

test('cifar10 exports with exactly the state_dict keys and shapes of google/ddpm-cifar10-32, and its config', () => {
  const shapes = readJson(path.join(FIXTURE, 'cifar10', 'param_shapes.json')) as {
    shapes: Record<string, number[]>;
    legacy_attention_key_aliases: Record<string, string>;
  };
  const config = presetConfig('cifar10');
  const pairs = diffusersKeyPairs(config);
  assert.deepEqual(Object.fromEntries(pairs.map((p) => [p.diffusers, p.torchShape])), shapes.shapes);
  assert.deepEqual(
    Object.fromEntries(pairs.filter((p) => p.legacy).map((p) => [p.legacy, p.diffusers])),
    shapes.legacy_attention_key_aliases,
  );
  const hub = readJson(path.join(FIXTURE, 'cifar10', 'config.json'));
  const ours = diffusersConfigFromUnet(config);
  for (const [k, v] of Object.entries(hub)) if (!k.startsWith('_')) assert.deepEqual(ours[k], v, k);
  // and back: the hub config is the preset (dropout aside, which only matters when training).
  assert.deepEqual(unetConfigFromDiffusers(hub), { ...config, dropout: 0 });
});

test('celebahq256: 113,673,219 parameters, the config of google/ddpm-celebahq-256', () => {
  const config = presetConfig('celebahq256');
  assert.equal(countParams(paramSpecs(config)), 113_673_219);
  const d = diffusersConfigFromUnet(config);
  assert.deepEqual(d.block_out_channels, [128, 128, 256, 256, 512, 512]);
  assert.deepEqual(d.down_block_types, [
    'DownBlock2D',
    'DownBlock2D',
    'DownBlock2D',
    'DownBlock2D',
    'AttnDownBlock2D',
    'DownBlock2D',
  ]);
  assert.deepEqual(d.up_block_types, [
    'UpBlock2D',
    'AttnUpBlock2D',
    'UpBlock2D',
    'UpBlock2D',
    'UpBlock2D',
    'UpBlock2D',
  ]);
  assert.equal(d.sample_size, 256);
  assert.deepEqual(unetConfigFromDiffusers(d), config);
});

test('export → import gives back the same weights and outputs (model and pipeline folders, F32)', async () => {
  const config: UNetConfig = { ...presetConfig('tiny'), channels: 3, attnHeadDim: 8 };
  const model = UNet.create(config, new Rng(3));
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  // Non-zero everywhere (fresh models have zero-initialised layers, which would hide a transposition).
  const rng = new Rng(4);
  for (const [k, v] of model.params) {
    const d = (await v.data()) as Float32Array;
    weights.set(k, { shape: v.shape, data: d.map((x) => x + 0.1 * (rng.uniform() - 0.5)) });
  }
  model.dispose();
  const dir = tmpDir();
  const ck = path.join(dir, 'model.safetensors');
  const schedule = { ...DEFAULT_SCHEDULE, cosineS: 0.008, maxBeta: 0.999 };
  saveCheckpoint(ck, {
    meta: { format: CHECKPOINT_FORMAT, kind: 'training', model: config, schedule, step: 7, seed: 1, created: 'now' },
    groups: { model: weights, ema: weights },
  });
  for (const pipeline of [false, true]) {
    const out = path.join(dir, pipeline ? 'pipe' : 'plain');
    const r = exportDiffusers({ checkpoint: ck, out, ema: true, f16: false, pipeline });
    assert.equal(r.step, 7);
    assert.deepEqual(
      r.files.map((f) => path.relative(out, f)).sort(),
      pipeline
        ? ['model_index.json', 'scheduler/scheduler_config.json', 'unet/config.json', `unet/${WEIGHTS_FILE}`]
        : ['config.json', 'diffusion_pytorch_model.safetensors', 'scheduler_config.json'],
    );
    const back = path.join(dir, `back-${pipeline}.safetensors`);
    const ir = importDiffusers({ path: out, out: back, f16: false, repo: 'me/tiny' });
    assert.deepEqual(ir.model, config);
    assert.deepEqual(ir.sampling, { varianceType: 'fixedlarge', clip: true });
    assert.deepEqual(ir.schedule, schedule);
    const loaded = loadCheckpoint(back, ['model']);
    assert.equal(loaded.meta.imported?.repo, 'me/tiny');
    assert.equal(loaded.meta.imported?.sha256.length, 64);
    for (const [k, v] of weights) assert.deepEqual(loaded.groups.model?.get(k)?.data, v.data, k);
    const y0 = await forward(config, weights);
    const y1 = await forward(config, loaded.groups.model!);
    assert.deepEqual(y1, y0);
  }
  // A scheduler config written by export reads back as the same schedule.
  const cos = { ...schedule, kind: 'cosine' as const };
  assert.deepEqual(
    scheduleFromDiffusers(diffusersSchedulerConfig(cos, { varianceType: 'fixedsmall', clip: false })).schedule,
    cos,
  );
});

test('what cannot be exported says why: conditional models, fewer channels than groups', () => {
  assert.throws(
    () => diffusersConfigFromUnet({ ...presetConfig('tiny'), numClasses: 10 }),
    /unsupported numClasses: 10: class-conditional/,
  );
  assert.throws(() => diffusersConfigFromUnet({ ...presetConfig('tiny'), ch: 4, groups: 8 }), /groups/);
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'f'), '');
  assert.throws(
    () => exportDiffusers({ checkpoint: path.join(dir, 'none'), out: dir, ema: true, f16: false, pipeline: false }),
    /checkpoint not found/,
  );
});

test('the inspector recognises a diffusers model’s weights and says whether they can be imported', () => {
  const r = inspectCheckpoint(path.join(SMALL, WEIGHTS_FILE));
  assert.equal(r.format, null);
  assert.equal(r.diffusers?.importable, true);
  assert.equal(r.diffusers?.config, path.join(SMALL, 'config.json'));
  assert.equal(r.diffusers?.model?.imageSize, 16);
  // Weights alone (no config.json beside them): recognised, not importable, and why.
  const alone = tmpDir();
  fs.copyFileSync(path.join(SMALL, WEIGHTS_FILE), path.join(alone, WEIGHTS_FILE));
  const a = inspectCheckpoint(path.join(alone, WEIGHTS_FILE));
  assert.equal(a.diffusers?.importable, false);
  assert.match(a.diffusers?.problem ?? '', /no config\.json/);
  // A config that does not describe these weights.
  const other = rewrittenCopy((name, data) => ({ name, bytes: f32Bytes(data), dtype: 'F32' }), {
    ...smallConfig(),
    layers_per_block: 1,
  });
  assert.match(
    inspectCheckpoint(path.join(other, WEIGHTS_FILE)).diffusers?.problem ?? '',
    /do not match|not in the model/,
  );
  // Our own checkpoints and other foreign files are not diffusers models.
  assert.equal(inspectCheckpoint(path.join(repoRoot, 'models', 'mnist.safetensors')).diffusers, undefined);
});

test('an imported checkpoint inspects with where it came from and how it samples; the model card says so', () => {
  const out = path.join(tmpDir(), 'small.safetensors');
  importDiffusers({ path: SMALL, out, f16: true, repo: 'test/small' });
  const r = inspectCheckpoint(out);
  assert.equal(r.imported?.repo, 'test/small');
  assert.deepEqual(r.imported?.dtypes, ['F32']);
  assert.equal(r.imported?.sha256.length, 64);
  assert.deepEqual(r.sampling, { varianceType: 'fixedsmall', clip: true });
  assert.equal(r.tensors[0].dtype, 'F16');
  const card = Object.fromEntries(modelCard(r).map((row) => [row.label, row.value]));
  assert.equal(card.step, 'imported');
  assert.equal(card['imported from'], 'test/small (diffusers 0.40.0.dev0, F32)');
  assert.equal(card.schedule, 'linear, T = 1000; DDPM σ² = β̃ (fixed_small)');
  const heads = modelCard({ ...r, model: { ...r.model!, attnHeadDim: 8 } }).find((row) => row.label === 'architecture');
  assert.match(heads?.value ?? '', /attention at 8 \(heads of 8 channels\)/);
});
