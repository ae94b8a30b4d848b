/**
 * A GPU buffer pool for the tfjs WebGPU backend that holds little more than its tensors' peak.
 *
 * Why: tfjs-webgpu 4.22 keeps every released buffer for reuse, keyed by its exact byte size, and never frees one. A
 * GPUBuffer cannot be split or merged, so in a U-Net's training step the buffers freed by one resolution cannot serve
 * the next: the pool held about twice the step's peak of live tensors (on the software adapter, mnist preset at
 * batch 12: 451 MB for a 190 MB peak). Here:
 *  - storage buffers are allocated in size classes (eight per power of two above 64 KiB, so at most 12.5 % is
 *    unused), and a request may take a free buffer of its class or of the next two up;
 *  - a request that finds none, when the pool already holds 10 % more than the most its tensors ever needed at once,
 *    first destroys free buffers, oldest first: the device's own allocator can reuse their memory for any size;
 *  - when a job ends, the sidecar gives every free buffer back (releaseFree, via releaseCachedMemory in backend.ts).
 * Measured on the software adapter (bench/RESULTS.md): 0.44–0.59× of what tfjs' pool held for the same steps (mnist
 * preset, batch 12: 219 MB instead of 443 MB), with ~370 buffers created per step instead of ~100, at the same speed
 * there. What the extra buffer creations cost on a real GPU has not been measured yet; DDPM_WEBGPU_POOL=exact keeps
 * tfjs' own pool.
 *
 * A buffer can now be larger than its tensor. Kernels are unaffected (tfjs-webgpu's shaders bound every access by
 * shape uniforms, none uses arrayLength), but a read-back copies the whole buffer, so `read` trims the values to the
 * tensor's size before tfjs caches them.
 */
import * as tf from '@tensorflow/tfjs';

/** The part of tfjs-webgpu's BufferManager that its backend uses. */
interface BufferManagerLike {
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
  releaseBuffer(buffer: GPUBuffer, reuse?: boolean): void;
  getNumUsedBuffers(): number;
  getNumFreeBuffers(): number;
  dispose(): void;
  numBytesUsed: number;
  numBytesAllocated: number;
}

interface TensorDataLike {
  values: tf.backend_util.BackendValues | null;
  dtype: tf.DataType;
  shape: number[];
}

interface WebgpuBackendLike {
  device: GPUDevice;
  bufferManager: BufferManagerLike;
  tensorMap: { get(dataId: object): TensorDataLike | undefined };
  read(dataId: object): Promise<tf.backend_util.BackendValues>;
  readSync(dataId: object): tf.backend_util.BackendValues;
}

// GPUBufferUsage.STORAGE: tensors live in storage buffers; staging (MAP_*) and uniform buffers keep exact sizes.
const STORAGE = 0x80;
const SMALL = 64 * 1024;
/** Classes per power of two above SMALL. */
const CLASSES_PER_OCTAVE = 8;
/** How many classes above its own a request may take a free buffer from (each class is ≤ 12.5 % larger). */
const LOOK_UP = 2;
/**
 * The pool may hold this fraction more than the most its tensors ever needed at once; beyond it, a request that finds
 * no free buffer first destroys free ones, oldest first.
 */
const SLACK = 0.1;
/**
 * Free buffers smaller than this fraction of that peak are never destroyed: they hardly matter for memory, and
 * re-creating them would triple the buffers created per step (mnist preset, batch 4: ~100 → ~850 instead of ~400).
 */
const TRIM_FRACTION = 0.001;

/** The allocation size for a storage buffer of `size` bytes: small ones to 256 B, larger ones to their size class. */
export function sizeClass(size: number): number {
  if (size <= SMALL) return Math.max(256, Math.ceil(size / 256) * 256);
  const step = 2 ** (Math.floor(Math.log2(size)) - Math.log2(CLASSES_PER_OCTAVE));
  return Math.ceil(size / step) * step;
}

/** The next class above an allocation size. */
function nextClass(cls: number): number {
  return sizeClass(cls + 1);
}

export class SizeClassBufferPool implements BufferManagerLike {
  numBytesUsed = 0;
  numBytesAllocated = 0;
  /** Buffers created so far (for benchmarks: the price of keeping the pool small). */
  created = 0;
  private readonly free = new Map<string, GPUBuffer[]>();
  /** Free pooled buffers, oldest release first. */
  private readonly freeOrder = new Set<GPUBuffer>();
  private readonly used = new Set<GPUBuffer>();
  private numFree = 0;
  private peakUsed = 0;
  private disposed = false;

  /** The most bytes the pool held at once (tfjs' own counter, numBytesAllocated, is the current figure). */
  peakBytesAllocated = 0;

  constructor(private readonly device: GPUDevice) {}

  acquireBuffer(size: number, usage: number, mappedAtCreation = false, reuse = true): GPUBuffer {
    const pooled = reuse && (usage & STORAGE) !== 0;
    const alloc = pooled ? sizeClass(size) : size;
    let buffer: GPUBuffer | undefined;
    if (reuse) {
      let cls = alloc;
      for (let i = 0; i <= (pooled ? LOOK_UP : 0) && !buffer; i++, cls = nextClass(cls)) {
        buffer = this.free.get(key(cls, usage))?.pop();
      }
      if (buffer) {
        this.numFree--;
        this.freeOrder.delete(buffer);
      }
    }
    if (!buffer) {
      // Before growing, give back free buffers (oldest first) beyond the allowance: the device's allocator can reuse
      // their memory for this size, which this pool cannot (a GPUBuffer cannot be split or merged). Without this the
      // pool held twice its tensors' peak: freed high-resolution activations sit idle while differently sized ones
      // are created.
      this.peakUsed = Math.max(this.peakUsed, this.numBytesUsed + alloc);
      const allowance = this.peakUsed * (1 + SLACK);
      if (this.numBytesAllocated + alloc > allowance) {
        for (const old of this.freeOrder) {
          if (old.size < this.peakUsed * TRIM_FRACTION) continue;
          this.destroyFree(old);
          if (this.numBytesAllocated + alloc <= allowance) break;
        }
      }
      buffer = this.device.createBuffer({ size: alloc, usage, mappedAtCreation });
      this.created++;
      this.numBytesAllocated += alloc;
      this.peakBytesAllocated = Math.max(this.peakBytesAllocated, this.numBytesAllocated);
    }
    this.used.add(buffer);
    this.numBytesUsed += buffer.size;
    this.peakUsed = Math.max(this.peakUsed, this.numBytesUsed);
    return buffer;
  }

  private destroyFree(buffer: GPUBuffer): void {
    const list = this.free.get(key(buffer.size, buffer.usage));
    const i = list ? list.indexOf(buffer) : -1;
    if (list && i >= 0) {
      list[i] = list[list.length - 1];
      list.pop();
    }
    this.freeOrder.delete(buffer);
    this.numFree--;
    this.numBytesAllocated -= buffer.size;
    buffer.destroy();
  }

  releaseBuffer(buffer: GPUBuffer, reuse = true): void {
    // tfjs releases tensors' buffers after disposing the pool at backend shutdown; as its own pool, ignore them.
    if (this.disposed) return;
    if (!this.used.delete(buffer)) throw new Error('Cannot find the buffer in buffer manager');
    this.numBytesUsed -= buffer.size;
    if (reuse) {
      const k = key(buffer.size, buffer.usage);
      const list = this.free.get(k);
      if (list) list.push(buffer);
      else this.free.set(k, [buffer]);
      this.freeOrder.add(buffer);
      this.numFree++;
    } else {
      buffer.destroy();
      this.numBytesAllocated -= buffer.size;
    }
  }

  /**
   * Destroys every free buffer (WebGPU frees a destroyed buffer once the work already submitted with it is done) and
   * forgets the peak, so that memory one job needed is not held for the next: called when a job ends. Returns the
   * bytes given back.
   */
  releaseFree(): number {
    const before = this.numBytesAllocated;
    for (const b of [...this.freeOrder]) this.destroyFree(b);
    this.peakUsed = this.numBytesUsed;
    return before - this.numBytesAllocated;
  }

  getNumUsedBuffers(): number {
    return this.used.size;
  }

  getNumFreeBuffers(): number {
    return this.numFree;
  }

  dispose(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    for (const b of this.used) b.destroy();
    this.free.clear();
    this.freeOrder.clear();
    this.used.clear();
    this.numFree = 0;
    this.numBytesUsed = 0;
    this.numBytesAllocated = 0;
    this.disposed = true;
  }
}

function key(size: number, usage: number): string {
  return `${size}_${usage}`;
}

/** The values of a tensor whose buffer may be larger than it: trimmed, and cached trimmed. */
function trimmed(td: TensorDataLike | undefined, vals: tf.backend_util.BackendValues): tf.backend_util.BackendValues {
  if (!td || td.dtype === 'string' || td.dtype === 'complex64' || !ArrayBuffer.isView(vals)) return vals;
  const n = tf.util.sizeFromShape(td.shape);
  if (vals.length <= n) return vals;
  const exact = vals.slice(0, n);
  td.values = exact;
  return exact;
}

export function webgpuPoolFromEnv(env: NodeJS.ProcessEnv = process.env): 'classes' | 'exact' {
  const raw = (env.DDPM_WEBGPU_POOL ?? '').trim();
  if (raw === '' || raw === 'classes') return 'classes';
  if (raw === 'exact') return 'exact';
  throw new Error(`DDPM_WEBGPU_POOL: unknown pool '${raw}' (use classes or exact)`);
}

/**
 * Puts the size-class pool into an initialised tfjs webgpu backend. Returns false (and changes nothing) when the
 * backend already holds buffers, whose bookkeeping is tfjs' own.
 */
export function installWebgpuBufferPool(backendIn: tf.KernelBackend): boolean {
  const backend = backendIn as unknown as WebgpuBackendLike;
  if (backend.bufferManager.getNumUsedBuffers() > 0 || backend.bufferManager.getNumFreeBuffers() > 0) return false;
  backend.bufferManager.dispose();
  backend.bufferManager = new SizeClassBufferPool(backend.device);
  const read = backend.read.bind(backend);
  const readSync = backend.readSync.bind(backend);
  backend.read = async (dataId) => {
    const cached = backend.tensorMap.get(dataId)?.values;
    if (cached != null) return cached;
    return trimmed(backend.tensorMap.get(dataId), await read(dataId));
  };
  backend.readSync = (dataId) => trimmed(backend.tensorMap.get(dataId), readSync(dataId));
  return true;
}
