// PyTorch .bin (torch.save's zip) weights of a diffusers model (sidecar/interop/torchCheckpoint.ts, torchPickle.ts,
// zipStored.ts): written here exactly as torch writes them (test/helpers/torchSave.ts) from the small fixture's
// safetensors, imported, and run; hostile pickles are refused without running anything.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { float32ToFloat16 } from '../../sidecar/checkpoint/float16.ts';
import { readHeader, readTensorF32 } from '../../sidecar/checkpoint/safetensors.ts';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { unetForward, type UNetConfig } from '../../sidecar/ddpm/unet.ts';
import { readDiffusersModel, TORCH_WEIGHTS_FILE, WEIGHTS_FILE } from '../../sidecar/interop/diffusersFolder.ts';
import { readTorchCheckpoint } from '../../sidecar/interop/torchCheckpoint.ts';
import { unpickle } from '../../sidecar/interop/torchPickle.ts';
import { classifyError } from '../../sidecar/jobs/errors.ts';
import { importDiffusers } from '../../sidecar/jobs/importModel.ts';
import { PickleWriter, statePickle, storedZip, torchSave, type TorchSaveOptions } from '../helpers/torchSave.ts';
import { repoRoot } from '../helpers/paths.ts';

const SMALL = path.join(repoRoot, 'test', 'fixtures', 'diffusers', 'small');
const io = JSON.parse(fs.readFileSync(path.join(SMALL, 'io.json'), 'utf8')) as {
  x_nhwc: number[];
  x_shape_nhwc: [number, number, number, number];
  timesteps: number[];
  output_nhwc: number[];
  tolerance: { abs: number };
};
const header = readHeader(path.join(SMALL, WEIGHTS_FILE));
const smallTensors = header.tensors.map((e) => ({ name: e.name, shape: e.shape, data: readTensorF32(header, e) }));

const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function binFolder(bin: Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-torchbin-'));
  made.push(dir);
  fs.copyFileSync(path.join(SMALL, 'config.json'), path.join(dir, 'config.json'));
  fs.writeFileSync(path.join(dir, TORCH_WEIGHTS_FILE), bin);
  return dir;
}

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

test('a .bin written as torch.save writes it imports to the same weights and forward pass as the safetensors', async () => {
  const before = tf.memory().numTensors;
  const reference = readDiffusersModel(SMALL);
  const yRef = await forward(reference.config, reference.weights);
  assert.ok(maxAbsDiff(yRef, io.output_nhwc) < io.tolerance.abs);
  const variants: [string, TorchSaveOptions][] = [
    ['protocol 2 (GLOBAL, BINPUT)', {}],
    ['protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE), ZIP64 end records', { protocol: 4, zip64: true }],
    ['one shared storage at offsets', { sharedStorage: true }],
    ['F64', { dtype: 'F64' }],
  ];
  for (const [what, o] of variants) {
    const dir = binFolder(torchSave(smallTensors, o));
    const m = readDiffusersModel(dir);
    assert.equal(m.files.weights, path.join(dir, TORCH_WEIGHTS_FILE), what);
    assert.deepEqual(m.dtypes, [o.dtype ?? 'F32'], what);
    for (const [k, v] of reference.weights) assert.deepEqual(m.weights.get(k)?.data, v.data, `${what}: ${k}`);
    assert.equal(maxAbsDiff(await forward(m.config, m.weights), yRef), 0, what);
  }
  // Half precision: the same values as the safetensors converted to F16 / BF16, within their rounding of io.json.
  for (const dtype of ['F16', 'BF16'] as const) {
    const m = readDiffusersModel(binFolder(torchSave(smallTensors, { dtype })));
    assert.deepEqual(m.dtypes, [dtype]);
    const err = maxAbsDiff(await forward(m.config, m.weights), io.output_nhwc);
    assert.ok(err < (dtype === 'F16' ? 5e-3 : 5e-2), `${dtype}: max |Δ| ${err}`);
  }
  assert.equal(tf.memory().numTensors, before);
});

test('import: a folder with only the .bin becomes a checkpoint; with both, the safetensors is read', () => {
  const dir = binFolder(torchSave(smallTensors));
  const out = path.join(dir, 'imported.safetensors');
  const r = importDiffusers({ path: dir, out, f16: false });
  assert.equal(r.out, out);
  assert.ok(
    r.notes.some((n) => /diffusion_pytorch_model\.bin \(torch\.save's format\) by a restricted unpickler/.test(n)),
  );
  const ck = loadCheckpoint(out);
  const ref = readDiffusersModel(SMALL);
  for (const [k, v] of ref.weights) assert.deepEqual(ck.groups.model?.get(k)?.data, v.data, k);
  // Both files: safetensors preferred (a .bin of zeros beside it would change every weight).
  fs.copyFileSync(path.join(SMALL, WEIGHTS_FILE), path.join(dir, WEIGHTS_FILE));
  fs.writeFileSync(
    path.join(dir, TORCH_WEIGHTS_FILE),
    torchSave(smallTensors.map((t) => ({ ...t, data: new Float32Array(t.data.length) }))),
  );
  assert.equal(readDiffusersModel(dir).files.weights, path.join(dir, WEIGHTS_FILE));
  // The .bin itself, named directly, is read.
  const zeros = readDiffusersModel(path.join(dir, TORCH_WEIGHTS_FILE));
  assert.ok([...zeros.weights.values()].every((w) => w.data.every((v) => v === 0)));
});

/** A pickle that would call `module.name('touch <file>')` if pickle.load ran it (GLOBAL or STACK_GLOBAL). */
function hostilePickle(module: string, name: string, marker: string, stackGlobal: boolean): Buffer {
  const w = new PickleWriter(stackGlobal ? 4 : 2);
  w.global(module, name);
  w.tuple([() => w.str(`touch ${marker}`)])
    .op(0x52)
    .op(0x2e);
  return w.bytes();
}

test('a .bin whose pickle names any other global is refused by name, and nothing runs', () => {
  const marker = path.join(os.tmpdir(), `ddpm-pwned-${process.pid}`);
  for (const [module, name] of [
    ['os', 'system'],
    ['posix', 'system'],
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['subprocess', 'Popen'],
    ['torch', 'load'],
    ['torch._utils', '_rebuild_device_tensor_from_numpy'],
  ])
    for (const stackGlobal of [false, true]) {
      const dir = binFolder(torchSave(smallTensors, { pickle: hostilePickle(module, name, marker, stackGlobal) }));
      assert.throws(
        () => readDiffusersModel(dir),
        (e: Error) =>
          e.message.includes(`names the global '${module}.${name}'`) &&
          /refused/.test(e.message) &&
          classifyError(e) === 'bad-input',
        `${module}.${name} ${stackGlobal ? 'STACK_GLOBAL' : 'GLOBAL'}`,
      );
    }
  assert.equal(fs.existsSync(marker), false);
  // The opcodes that build arbitrary objects are refused even without a global: INST, OBJ, NEWOBJ.
  for (const op of ['i', 'o', '\x81']) {
    const bytes = Buffer.concat([Buffer.from([0x80, 2, 0x28]), Buffer.from(op, 'latin1'), Buffer.from('os\nsystem\n')]);
    assert.throws(() => unpickle(bytes), /opcode 0x[0-9a-f]{2} .* which a state_dict does not use: refused/);
  }
  // A persistent id is only ever a storage.
  const w = new PickleWriter(2);
  w.tuple([() => w.str('module'), () => w.global('collections', 'OrderedDict')])
    .op(0x51)
    .op(0x2e);
  assert.throws(() => unpickle(w.bytes()), /persistent id that is not \('storage'/);
});

test('truncated or corrupt archives and pickles, strided tensors: clear errors', () => {
  const good = torchSave(smallTensors);
  const refuse = (bin: Buffer, re: RegExp) =>
    assert.throws(
      () => readDiffusersModel(binFolder(bin)),
      (e: Error) => re.test(e.message) && classifyError(e) === 'bad-input',
      String(re),
    );
  refuse(good.subarray(0, good.length - 10), /no end-of-central-directory record \(truncated, or not a zip file\)/);
  refuse(good.subarray(0, good.length >> 1), /no end-of-central-directory record/);
  // A damaged central directory entry.
  const cd = good.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  const damaged = Buffer.from(good);
  damaged.writeUInt32LE(0xdeadbeef, cd);
  refuse(damaged, /central directory entry \d+ is damaged/);
  const noPkl = storedZip([{ name: 'archive/version', data: Buffer.from('3\n') }]);
  refuse(noPkl, /without <name>\/data\.pkl is not a torch\.save file/);
  const refs = smallTensors.map((t, i) => ({
    name: t.name,
    shape: t.shape,
    key: String(i),
    offset: 0,
    numel: t.data.length,
  }));
  const pkl = statePickle(refs, 'F32');
  refuse(torchSave(smallTensors, { pickle: pkl.subarray(0, pkl.length - 40) }), /ends inside an opcode|truncated|pops/);
  refuse(torchSave(smallTensors, { pickle: Buffer.from([0x80, 2, 0x4e, 0x2e]) }), /does not hold a state_dict/);
  // A tensor past its storage, and one whose strides are not contiguous.
  refuse(
    torchSave(smallTensors, {
      pickle: statePickle(
        refs.map((r, i) => (i === 0 ? { ...r, offset: 5 } : r)),
        'F32',
      ),
    }),
    /lies outside its storage/,
  );
  const transposed = Buffer.from(pkl);
  const conv = smallTensors.findIndex((t) => t.shape.length === 2 && t.shape[0] !== t.shape[1]);
  assert.ok(conv >= 0);
  // Python's pickler would write the stride of a transposed [a, b] as (1, a): patch the (b, 1) tuple of that tensor.
  const [a, b] = smallTensors[conv].shape;
  const strideOf = (s0: number, s1: number) => Buffer.from([0x4b, s0, 0x4b, s1, 0x86]);
  const at = transposed.indexOf(strideOf(b, 1), transposed.indexOf(Buffer.from(smallTensors[conv].name)));
  assert.ok(at > 0 && a < 256 && b < 256);
  strideOf(1, a).copy(transposed, at);
  refuse(torchSave(smallTensors, { pickle: transposed }), /is not contiguous \(size \[\d+,\d+\], stride \[1,\d+\]\)/);
  refuse(Buffer.from('\x80\x02}q\x00.'), /not a PyTorch zip checkpoint .*legacy/);
  // Bounds (sidecar/limits.ts): entries of the archive, nesting of the pickle.
  const many = torchSave(smallTensors, { zip64: true });
  many.writeBigUInt64LE(100_001n, many.length - 22 - 20 - 56 + 32);
  refuse(many, /entries in .* is 100,001, over the limit of 100,000/);
  assert.throws(
    () => unpickle(Buffer.concat([Buffer.from([0x80, 2]), Buffer.alloc(1001, 0x28)])),
    /the nesting of the pickle is 1,001, over the limit of 1,000/,
  );
  // Big-endian storages and compressed entries (torch.save writes neither).
  const big = storedZip([
    { name: 'archive/data.pkl', data: pkl },
    { name: 'archive/byteorder', data: Buffer.from('big') },
  ]);
  refuse(big, /saved on a big-endian machine; only little-endian storages are read/);
  const deflated = Buffer.from(good);
  deflated.writeUInt16LE(8, good.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 10);
  refuse(deflated, /'archive\/data\.pkl' is compressed \(method 8\); torch\.save stores its entries uncompressed/);
  // Any file that is not a zip.
  assert.throws(() => readTorchCheckpoint(path.join(binFolder(good), 'config.json')), /not a PyTorch zip checkpoint/);
});

test("CPython's own pickler's state_dict (protocols 2 and 5, test/fixtures/torchPickle/make.py) reads exactly", () => {
  for (const proto of [2, 5]) {
    const pkl = fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'torchPickle', `state_dict.p${proto}.pkl`));
    const f32 = Float32Array.from({ length: 30 }, (_, i) => i / 4);
    const f16 = Buffer.alloc(48);
    for (let i = 0; i < 24; i++) f16.writeUInt16LE(float32ToFloat16(i - 12), i * 2);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-torchbin-')), 'state.bin');
    fs.writeFileSync(
      file,
      storedZip([
        { name: 'state/data.pkl', data: pkl },
        { name: 'state/byteorder', data: Buffer.from('little') },
        { name: 'state/data/0', data: Buffer.from(f32.buffer) },
        { name: 'state/data/1', data: f16 },
        { name: 'state/version', data: Buffer.from('3\n') },
      ]),
    );
    const h = readTorchCheckpoint(file);
    assert.equal(h.tensors.length, 3 + 1001, `protocol ${proto}`);
    const get = (name: string) => {
      const e = h.tensors.find((t) => t.name === name)!;
      return { dtype: e.dtype, shape: e.shape, data: [...readTensorF32(h, e)] };
    };
    assert.deepEqual(get('a.weight'), { dtype: 'F32', shape: [2, 3], data: [0, 0.25, 0.5, 0.75, 1, 1.25] });
    assert.deepEqual(get('a.bias'), { dtype: 'F32', shape: [2], data: [1.5, 1.75] });
    assert.deepEqual(get('b.weight'), {
      dtype: 'F16',
      shape: [2, 3, 2, 2],
      data: Array.from({ length: 24 }, (_, i) => i - 12),
    });
    assert.deepEqual(get('x1000'), { dtype: 'F32', shape: [1], data: [2] });
    fs.rmSync(path.dirname(file), { recursive: true });
  }
});
