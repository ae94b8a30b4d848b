/**
 * A restricted unpickler for the data.pkl of a PyTorch state_dict (torch.save since 1.6). It runs nothing: it reads
 * the opcodes a state_dict uses (protocols 2–5) and knows only the globals one needs — collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the typed storage classes (torch.FloatStorage, …),
 * torch.storage.UntypedStorage and dtype objects (torch.float32, …). Any other global (os.system, builtins.eval, …)
 * is refused by name the moment it is read, as are the opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, EXT).
 * This is the security boundary that lets a .bin be read: pickle's own loader would call whatever the file names.
 *
 * What torch writes (torch/serialization.py `_save`, torch/_tensor.py `_reduce_ex_internal`): the dict as
 * `OrderedDict()` + SETITEMS (+ BUILD of its `_metadata`); each tensor as
 * `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`, where the
 * storage is a persistent id `('storage', torch.FloatStorage, key, location, numel)` naming the entry data/<key>.
 */
import { checkLimit, LIMITS } from '../limits.ts';

export class PickleError extends Error {
  override name = 'PickleError';
}

/** The dtypes of torch's typed storage classes (torch/storage.py `_pickle_storage_type`), as safetensors names them. */
export const STORAGE_DTYPES: Readonly<Record<string, string>> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.DoubleStorage': 'F64',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
  'torch.storage.UntypedStorage': 'U8',
};
const DTYPE_OBJECTS = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];
const CALLABLES = ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter'];

class Global {
  constructor(readonly name: string) {}
}
export class Tuple {
  constructor(readonly items: Value[]) {}
}
export class Dict {
  readonly map = new Map<Value, Value>();
}
/** A storage named by a persistent id: the zip entry data/<key>, `numel` elements of `dtype`. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: string,
    readonly numel: number,
  ) {}
}
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}
export type Value =
  null | boolean | number | bigint | string | Uint8Array | Value[] | Tuple | Dict | Global | StorageRef | TensorRef;

const MARK = Symbol('mark');

function allowedGlobal(module: string, name: string): Global {
  const full = `${module}.${name}`;
  if (CALLABLES.includes(full) || full in STORAGE_DTYPES || (module === 'torch' && DTYPE_OBJECTS.includes(name)))
    return new Global(full);
  throw new PickleError(
    `the pickle names the global '${full}', which a state_dict does not need: refused (loading it could run code); only OrderedDict, torch's tensor rebuilders, storage classes and dtypes are read`,
  );
}

const intOf = (v: Value, what: string): number => {
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new PickleError(`${what} is not an integer`);
  return v;
};
const intsOf = (v: Value, what: string): number[] => {
  if (!(v instanceof Tuple)) throw new PickleError(`${what} is not a tuple`);
  return v.items.map((x) => intOf(x, what));
};

function call(fn: Value, args: Value): Value {
  if (!(fn instanceof Global)) throw new PickleError('REDUCE on something that is not a global');
  if (!(args instanceof Tuple)) throw new PickleError(`the arguments of ${fn.name} are not a tuple`);
  const a = args.items;
  switch (fn.name) {
    case 'collections.OrderedDict':
      if (a.length) throw new PickleError('OrderedDict is called with arguments; torch writes OrderedDict()');
      return new Dict();
    case 'torch._utils._rebuild_tensor_v2': {
      if (a.length !== 6 && a.length !== 7)
        throw new PickleError(`_rebuild_tensor_v2 takes 6 or 7 arguments, not ${a.length}`);
      if (!(a[0] instanceof StorageRef)) throw new PickleError('_rebuild_tensor_v2 is given something not a storage');
      const shape = intsOf(a[2], 'a tensor size');
      const stride = intsOf(a[3], 'a tensor stride');
      checkLimit('rank', shape.length, 'dimensions of a tensor');
      if (stride.length !== shape.length) throw new PickleError('a tensor has a stride of another rank than its size');
      return new TensorRef(a[0], intOf(a[1], 'a storage offset'), shape, stride);
    }
    case 'torch._utils._rebuild_parameter':
      if (a.length !== 3 || !(a[0] instanceof TensorRef))
        throw new PickleError('_rebuild_parameter takes (tensor, requires_grad, backward_hooks)');
      return a[0];
    default:
      throw new PickleError(`${fn.name} is not something a state_dict calls`);
  }
}

/** The persistent id of a storage: ('storage', storage_type, key, location, numel). */
function persistentLoad(pid: Value): StorageRef {
  if (!(pid instanceof Tuple) || pid.items.length !== 5 || pid.items[0] !== 'storage')
    throw new PickleError("a persistent id that is not ('storage', type, key, location, numel)");
  const [, type, key, , numel] = pid.items;
  if (!(type instanceof Global) || !(type.name in STORAGE_DTYPES))
    throw new PickleError('a persistent id whose storage type is not a torch storage class');
  if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(key))
    throw new PickleError('a persistent id with a storage key that is not a plain name');
  return new StorageRef(key, STORAGE_DTYPES[type.name], intOf(numel, 'a storage size'));
}

/** Runs the restricted unpickler over `data` and returns the value STOP leaves. */
export function unpickle(data: Uint8Array): Value {
  checkLimit('headerBytes', data.length, 'the pickle (bytes)');
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  let stack: (Value | typeof MARK)[] = [];
  const marks: (Value | typeof MARK)[][] = [];
  const memo = new Map<number, Value>();
  const need = (n: number) => {
    if (p + n > buf.length) throw new PickleError(`the pickle ends inside an opcode at byte ${p} (truncated)`);
    const at = p;
    p += n;
    return at;
  };
  const pop = (): Value => {
    if (!stack.length) throw new PickleError(`the pickle pops an empty stack at byte ${p}`);
    const v = stack.pop()!;
    if (v === MARK) throw new PickleError(`the pickle pops a MARK at byte ${p}`);
    return v;
  };
  const top = (): Value => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError(`the pickle reads an empty stack at byte ${p}`);
    return v;
  };
  const popMark = (): Value[] => {
    const items = stack as Value[];
    if (!marks.length) throw new PickleError(`the pickle closes a MARK it never opened at byte ${p}`);
    stack = marks.pop()!;
    return items;
  };
  const str = (n: number) => buf.toString('utf8', need(n), p);
  const line = () => {
    const end = buf.indexOf(0x0a, p);
    if (end < 0) throw new PickleError('the pickle ends inside a GLOBAL name (truncated)');
    const s = buf.toString('utf8', p, end);
    p = end + 1;
    return s;
  };
  const setItems = (d: Value, items: Value[]) => {
    if (!(d instanceof Dict)) throw new PickleError('SETITEM(S) on something that is not a dict');
    if (items.length % 2) throw new PickleError('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
  };
  const append = (l: Value, items: Value[]) => {
    if (!Array.isArray(l)) throw new PickleError('APPEND(S) on something that is not a list');
    for (const v of items) l.push(v); // not push(...items): a huge APPENDS would overflow the call stack
  };
  for (;;) {
    const at = need(1);
    const op = buf[at];
    switch (op) {
      case 0x80: // PROTO
        if (buf[need(1)] > 5) throw new PickleError(`pickle protocol ${buf[p - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length hint only
        need(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length)
          throw new PickleError('the pickle stops with a stack that is not one value');
        return pop();
      case 0x28: // MARK
        checkLimit('pickleDepth', marks.length + 1, 'the nesting of the pickle');
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length && stack[stack.length - 1] === MARK) stack.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(buf.readInt32LE(need(4)));
        break;
      case 0x4b: // BININT1
        stack.push(buf[need(1)]);
        break;
      case 0x4d: // BININT2
        stack.push(buf.readUInt16LE(need(2)));
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? buf[need(1)] : buf.readUInt32LE(need(4));
        if (n > 16) throw new PickleError(`a ${n}-byte integer in the pickle`);
        const b = buf.subarray(need(n), p);
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT
        stack.push(buf.readDoubleBE(need(8)));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(buf.readUInt32LE(need(4))));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(buf[need(1)]));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(Number(buf.readBigUInt64LE(need(8)) & 0xffffffffn)));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(buf.toString('latin1', need(buf[need(1)]), p));
        break;
      case 0x54: // BINSTRING
        stack.push(buf.toString('latin1', need(buf.readUInt32LE(need(4))), p));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(buf.subarray(need(buf[need(1)]), p)));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(buf.subarray(need(buf.readUInt32LE(need(4))), p)));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new Tuple([]));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const items: Value[] = [];
        for (let i = 0; i < op - 0x84; i++) items.unshift(pop());
        stack.push(new Tuple(items));
        break;
      }
      case 0x74: {
        // TUPLE (popMark first: it replaces `stack`)
        const items = popMark();
        stack.push(new Tuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Dict());
        break;
      case 0x64: {
        // DICT
        const d = new Dict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        stack.push(allowedGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          throw new PickleError('STACK_GLOBAL on values that are not strings');
        stack.push(allowedGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD: the state torch gives a state_dict is its `_metadata` (module versions), not needed for weights.
        pop();
        const target = top();
        if (!(target instanceof Dict) && !(target instanceof TensorRef))
          throw new PickleError('BUILD on something that is not a dict or tensor');
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x71: // BINPUT
        memo.set(buf[need(1)], top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(buf.readUInt32LE(need(4)), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? buf[need(1)] : buf.readUInt32LE(need(4));
        if (!memo.has(i)) throw new PickleError(`the pickle gets memo ${i}, which it never put`);
        stack.push(memo.get(i)!);
        break;
      }
      default:
        throw new PickleError(
          `the pickle uses opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}') at byte ${at}, which a state_dict does not use: refused`,
        );
    }
    // A state_dict keeps a few thousand values on the stack (pickle batches SETITEMS by 1000) and in the memo.
    if (stack.length > LIMITS.pickleValues) checkLimit('pickleValues', stack.length, 'values on the pickle stack');
    if (memo.size > LIMITS.pickleValues) checkLimit('pickleValues', memo.size, 'values in the pickle memo');
  }
}
