// Writes a state_dict as torch.save does (PyTorch ≥ 1.6, torch/serialization.py `_save`), for tests of the .bin
// reader without Python: the pickle of `OrderedDict()` + SETITEMS of `_rebuild_tensor_v2(persistent storage id, offset,
// size, stride, False, OrderedDict())` calls and a BUILD of `_metadata`, in a zip of stored entries
// (archive/data.pkl, archive/byteorder, archive/data/<key>, archive/version, archive/.data/serialization_id)
// whose data start on 64-byte boundaries (PyTorchStreamWriter pads the local header's extra field).
import zlib from 'node:zlib';
import { float32ToFloat16 } from '../../sidecar/checkpoint/float16.ts';

export interface TorchTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface TorchSaveOptions {
  /** Pickle protocol: 2 (torch's default: GLOBAL, BINPUT, BINUNICODE) or 4 (FRAME, STACK_GLOBAL, MEMOIZE). */
  protocol?: 2 | 4;
  dtype?: 'F32' | 'F16' | 'BF16' | 'F64';
  /** All tensors views of one storage at increasing offsets (as a module whose parameters share a flat buffer). */
  sharedStorage?: boolean;
  /** Write the ZIP64 end records too (miniz does with MZ_ZIP_FLAG_WRITE_ZIP64). */
  zip64?: boolean;
  /** Replace the pickle (to write hostile ones). */
  pickle?: Buffer;
}

const STORAGE: Record<string, string> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  F64: 'DoubleStorage',
};

function encode(data: Float32Array, dtype: string): Buffer {
  switch (dtype) {
    case 'F16': {
      const b = Buffer.alloc(data.length * 2);
      data.forEach((v, i) => b.writeUInt16LE(float32ToFloat16(v), i * 2));
      return b;
    }
    case 'BF16': {
      const bits = new Uint32Array(Float32Array.from(data).buffer);
      const b = Buffer.alloc(data.length * 2);
      bits.forEach((v, i) => b.writeUInt16LE(v >>> 16, i * 2));
      return b;
    }
    case 'F64': {
      const b = Buffer.alloc(data.length * 8);
      data.forEach((v, i) => b.writeDoubleLE(v, i * 8));
      return b;
    }
    default:
      return Buffer.from(Float32Array.from(data).buffer);
  }
}

/** A pickle writer with pickle's memo of globals (a repeated global is a BINGET, as Python's pickler writes). */
export class PickleWriter {
  private parts: Buffer[] = [];
  private memo = 0;
  private globals = new Map<string, number>();
  constructor(readonly protocol: 2 | 4 = 2) {}
  op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }
  put(): this {
    const i = this.memo++;
    if (this.protocol >= 4) return this.op(0x94);
    return i < 256 ? this.op(0x71, i) : this.op(0x72, ...u32(i));
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (this.protocol >= 4 && b.length < 256) this.op(0x8c, b.length);
    else this.op(0x58, ...u32(b.length));
    this.parts.push(b);
    return this.put();
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return this.op(0x4a, ...b);
  }
  global(module: string, name: string): this {
    const key = `${module}\n${name}`;
    const at = this.globals.get(key);
    if (at !== undefined) return at < 256 ? this.op(0x68, at) : this.op(0x6a, ...u32(at));
    if (this.protocol >= 4) {
      this.str(module).str(name).op(0x93);
    } else {
      this.op(0x63);
      this.parts.push(Buffer.from(`${module}\n${name}\n`, 'utf8'));
    }
    this.globals.set(key, this.memo);
    return this.put();
  }
  tuple(items: (() => void)[]): this {
    if (items.length === 0) return this.op(0x29);
    if (items.length > 3) this.op(0x28);
    items.forEach((f) => f());
    this.op(items.length <= 3 ? 0x84 + items.length : 0x74);
    return this.put();
  }
  bytes(): Buffer {
    const body = Buffer.concat(this.parts);
    if (this.protocol < 4) return Buffer.concat([Buffer.from([0x80, 2]), body]);
    const frame = Buffer.alloc(9);
    frame[0] = 0x95;
    frame.writeBigUInt64LE(BigInt(body.length), 1);
    return Buffer.concat([Buffer.from([0x80, 4]), frame, body]);
  }
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return [...b];
};

/** The pickle torch writes for an OrderedDict state_dict whose tensors live in the given storages. */
export function statePickle(
  tensors: readonly { name: string; shape: number[]; key: string; offset: number; numel: number }[],
  dtype: string,
  protocol: 2 | 4 = 2,
): Buffer {
  const w = new PickleWriter(protocol);
  w.global('collections', 'OrderedDict').op(0x29).op(0x52).put().op(0x28);
  for (const t of tensors) {
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, d) => a * d, 1));
    w.str(t.name).global('torch._utils', '_rebuild_tensor_v2');
    w.tuple([
      () =>
        w
          .tuple([
            () => w.str('storage'),
            () => w.global('torch', STORAGE[dtype]),
            () => w.str(t.key),
            () => w.str('cpu'),
            () => w.int(t.numel),
          ])
          .op(0x51),
      () => w.int(t.offset),
      () => w.tuple(t.shape.map((d) => () => w.int(d))),
      () => w.tuple(stride.map((d) => () => w.int(d))),
      () => w.op(0x89),
      () => w.global('collections', 'OrderedDict').op(0x29).op(0x52).put(),
    ]);
    w.op(0x52).put();
  }
  w.op(0x75);
  // state: {'_metadata': OrderedDict([('', {'version': 1})])}, then BUILD.
  w.op(0x7d).put().str('_metadata').global('collections', 'OrderedDict').op(0x29).op(0x52).put();
  w.op(0x28).str('').op(0x7d).put().str('version').int(1).op(0x73).op(0x75).op(0x73).op(0x62).op(0x2e);
  return w.bytes();
}

/** A zip of stored entries, each entry's data 64-byte aligned, as PyTorchStreamWriter writes it. */
export function storedZip(entries: readonly { name: string; data: Buffer }[], zip64 = false): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const pad = (64 - ((at + 30 + name.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246); // 'FB', PyTorch's alignment padding
    extra.writeUInt16LE(pad, 2);
    const crc = zlib.crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(at, 42);
    central.push(c, name);
    parts.push(local, name, extra, e.data);
    at += 30 + name.length + extra.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = at;
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50);
    loc.writeBigUInt64LE(BigInt(cdOffset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    parts.push(cd, rec, loc);
  } else parts.push(cd);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(zip64 ? 0xffffffff : cdOffset, 16);
  parts.push(end);
  return Buffer.concat(parts);
}

/** The bytes of torch.save(state_dict, 'diffusion_pytorch_model.bin'). */
export function torchSave(tensors: readonly TorchTensor[], o: TorchSaveOptions = {}): Buffer {
  const dtype = o.dtype ?? 'F32';
  const storages: { key: string; data: Buffer }[] = [];
  const refs: { name: string; shape: number[]; key: string; offset: number; numel: number }[] = [];
  if (o.sharedStorage) {
    let offset = 0;
    const all = new Float32Array(tensors.reduce((a, t) => a + t.data.length, 0));
    for (const t of tensors) {
      all.set(t.data, offset);
      refs.push({ name: t.name, shape: t.shape, key: '0', offset, numel: all.length });
      offset += t.data.length;
    }
    storages.push({ key: '0', data: encode(all, dtype) });
  } else
    tensors.forEach((t, i) => {
      storages.push({ key: String(i), data: encode(t.data, dtype) });
      refs.push({ name: t.name, shape: t.shape, key: String(i), offset: 0, numel: t.data.length });
    });
  const pickle = o.pickle ?? statePickle(refs, dtype, o.protocol);
  return storedZip(
    [
      { name: 'archive/data.pkl', data: pickle },
      { name: 'archive/byteorder', data: Buffer.from('little') },
      ...storages.map((s) => ({ name: `archive/data/${s.key}`, data: s.data })),
      { name: 'archive/version', data: Buffer.from('3\n') },
      { name: 'archive/.data/serialization_id', data: Buffer.from('1234567890123456789012345678901234567890') },
    ],
    o.zip64,
  );
}
