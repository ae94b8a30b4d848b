/**
 * A PyTorch state_dict saved by torch.save (the zip format of PyTorch ≥ 1.6: `<name>/data.pkl`, `<name>/data/<key>`
 * raw little-endian storages, `<name>/byteorder`, `<name>/version`) read without running it: the pickle goes through
 * the restricted unpickler (torchPickle.ts) and each tensor becomes a TensorEntry with absolute offsets into the
 * file, so readTensorF32 reads it exactly as it reads a safetensors tensor. Tensors must be contiguous (what
 * state_dict() of a module holds); a view with other strides gets a clear error rather than a wrong reading.
 */
import fs from 'node:fs';
import { DTYPE_BYTES, type SafetensorsHeader, type TensorEntry } from '../checkpoint/safetensors.ts';
import { openRegularFile, readFully } from '../files.ts';
import { checkLimit } from '../limits.ts';
import { Dict, PickleError, TensorRef, unpickle, type Value } from './torchPickle.ts';
import { entryDataOffset, readZipDirectory, ZipError, type ZipEntry } from './zipStored.ts';

export class TorchCheckpointError extends Error {
  override name = 'TorchCheckpointError';
}

/** The tensors of the state_dict in `file`, as a SafetensorsHeader (offsets absolute; metadata says where from). */
export function readTorchCheckpoint(file: string): SafetensorsHeader {
  const fd = openRegularFile(file);
  try {
    const fileSize = fs.fstatSync(fd).size;
    const head = Buffer.alloc(4);
    if (readFully(fd, head, 0, 4, 0) < 4 || head.readUInt32LE(0) !== 0x04034b50)
      throw new TorchCheckpointError(
        `${file} is not a PyTorch zip checkpoint (torch.save since 1.6); the legacy pre-1.6 format is not read: re-save it with a current torch, or as safetensors`,
      );
    const entries = readZipDirectory(fd, file);
    const pkl = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
    if (!pkl) throw new TorchCheckpointError(`${file}: a zip archive without <name>/data.pkl is not a torch.save file`);
    const prefix = pkl.name.slice(0, -'data.pkl'.length);
    const byName = new Map(
      entries.filter((e) => e.name.startsWith(prefix)).map((e) => [e.name.slice(prefix.length), e]),
    );
    const readEntry = (e: ZipEntry, limit: number): Buffer => {
      if (e.size > limit) throw new TorchCheckpointError(`${file}: '${e.name}' is ${e.size} bytes, too large`);
      const start = entryDataOffset(fd, file, e);
      const b = Buffer.alloc(e.size);
      readFully(fd, b, 0, e.size, start);
      return b;
    };
    const order = byName.get('byteorder');
    if (order && readEntry(order, 16).toString('latin1') !== 'little')
      throw new TorchCheckpointError(`${file} was saved on a big-endian machine; only little-endian storages are read`);
    let root: Value;
    try {
      checkLimit('headerBytes', pkl.size, `${pkl.name} (bytes)`);
      root = unpickle(readEntry(pkl, Number.MAX_SAFE_INTEGER));
    } catch (e) {
      if (e instanceof PickleError || e instanceof ZipError)
        throw new TorchCheckpointError(`${file}: ${pkl.name}: ${e.message}`);
      throw e;
    }
    if (!(root instanceof Dict))
      throw new TorchCheckpointError(`${file} does not hold a state_dict (its pickle is not a dict of tensors)`);
    checkLimit('tensors', root.map.size, `tensors in ${file}`);
    const tensors: TensorEntry[] = [];
    const storageStart = new Map<string, { start: number; bytes: number }>();
    for (const [name, t] of root.map) {
      if (typeof name !== 'string' || !(t instanceof TensorRef))
        throw new TorchCheckpointError(
          `${file}: the state_dict entry ${JSON.stringify(String(name))} is not a tensor (a training checkpoint rather than a model's state_dict?)`,
        );
      const size = DTYPE_BYTES[t.storage.dtype];
      const n = t.shape.reduce((a, d) => a * d, 1);
      // Contiguous (row-major) strides; a dimension of size 1 may have any stride.
      let expect = 1;
      for (let i = t.shape.length - 1; i >= 0; i--) {
        if (t.shape[i] < 0) throw new TorchCheckpointError(`${file}: tensor '${name}' has a negative size`);
        if (t.shape[i] !== 1 && t.stride[i] !== expect)
          throw new TorchCheckpointError(
            `${file}: tensor '${name}' is not contiguous (size [${t.shape}], stride [${t.stride}]); save contiguous tensors (tensor.contiguous())`,
          );
        expect *= t.shape[i];
      }
      const entry = byName.get(`data/${t.storage.key}`);
      if (!entry)
        throw new TorchCheckpointError(
          `${file}: tensor '${name}' names storage ${t.storage.key}, which the archive lacks`,
        );
      let s = storageStart.get(t.storage.key);
      if (!s) {
        s = { start: entryDataOffset(fd, file, entry), bytes: entry.size };
        storageStart.set(t.storage.key, s);
      }
      if (t.offset < 0 || (t.offset + n) * size > s.bytes || t.storage.numel * size > s.bytes)
        throw new TorchCheckpointError(
          `${file}: tensor '${name}' (offset ${t.offset}, ${n} elements of ${t.storage.dtype}) lies outside its storage of ${s.bytes} bytes`,
        );
      const begin = s.start + t.offset * size;
      tensors.push({ name, dtype: t.storage.dtype, shape: t.shape, begin, end: begin + n * size });
    }
    return { file, fileSize, headerSize: 0, metadata: { format: 'pt', container: 'torch-zip' }, tensors };
  } catch (e) {
    if (e instanceof ZipError) throw new TorchCheckpointError(e.message);
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}
