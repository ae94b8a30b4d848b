/**
 * Chooses and initialises the TensorFlow.js backend, and says what it picked and why the others were passed over.
 *
 * Order for `auto`, best first:
 *  1. `tensorflow` with @tensorflow/tfjs-node-gpu (libtensorflow for CUDA). The native packages are optional: they
 *     download libtensorflow when installed, so they are never dependencies of ours; used only if the user has them.
 *  2. `webgpu`: Dawn (npm `webgpu`) + @tensorflow/tfjs-backend-webgpu, any GPU vendor. Only a hardware adapter is
 *     taken by `auto`: a software rasteriser (llvmpipe, lavapipe, SwiftShader) is slower than wasm.
 *  3. `tensorflow` with @tensorflow/tfjs-node (libtensorflow for the CPU, multithreaded).
 *  4. `wasm`: XNNPACK kernels, plus our training kernels (sidecar/kernels/wasmTrainingKernels.ts).
 *  5. `cpu`: plain JavaScript; correct but 50× slower for conv gradients, so only a last resort.
 * An explicit `tensorflow` takes either package, the CUDA one first.
 * An explicit choice that cannot be used fails with BackendUnavailableError, whose message says why and what to do.
 */
import * as tf from '@tensorflow/tfjs';
import Module, { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { registerWasmTrainingKernels } from './kernels/wasmTrainingKernels.ts';
import { enableWebgpuDropout } from './kernels/webgpuDropout.ts';
import { registerWebgpuTrainingKernels } from './kernels/webgpuTrainingKernels.ts';
import { installWebgpuBufferPool, SizeClassBufferPool, webgpuPoolFromEnv } from './kernels/webgpuBufferPool.ts';

// Node 21+ has a global navigator; this project type-checks without the DOM lib and @types/node 20 lacks it.
declare const navigator: { gpu?: unknown } | undefined;

export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type BackendChoice = 'auto' | BackendName;

export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  /** Why it was not used (or a note on what was found). */
  reason?: string;
}

export interface BackendReport {
  /** The backend now active in tfjs. */
  name: BackendName;
  /** A human-readable device: GPU adapter, native library, or wasm flavour. */
  device: string;
  /** For `tensorflow`: which npm package provided it. */
  module?: string;
  /** Every backend considered, in order, with the reason it was not picked. */
  attempts: BackendAttempt[];
}

export interface BackendOptions {
  /**
   * Extra folders (each containing node_modules) searched for @tensorflow/tfjs-node(-gpu), e.g. an install location of
   * the extension. DDPM_NATIVE_PATH (path-delimited) is always searched after these, so benchmarks and the CLI see the
   * same install as the sidecar.
   */
  nativeSearchPaths?: string[];
  /** Dawn toggles passed to `create()`, e.g. ['backend=opengles'] for Mesa's GL ES driver. Default: DDPM_WEBGPU_FLAGS (comma-separated). */
  webgpuFlags?: string[];
  /** 'compatibility' is needed by Dawn's OpenGL ES backend. Default: DDPM_WEBGPU_FEATURE_LEVEL or 'core'. */
  webgpuFeatureLevel?: 'core' | 'compatibility';
  /** Accept a software WebGPU adapter (slow; for testing the code path). Explicit `webgpu` always accepts one. */
  allowSoftwareAdapter?: boolean;
  /** Folder with the tfjs wasm binaries (for bundled builds that copy them next to the bundle). */
  wasmDir?: string;
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    reason: string,
    readonly attempts: BackendAttempt[] = [],
  ) {
    super(`backend '${backend}' is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

const HOW_TO_GET: Record<BackendName, string> = {
  tensorflow:
    'install @tensorflow/tfjs-node-gpu (NVIDIA, needs CUDA 11.2 + cuDNN 8.1) or @tensorflow/tfjs-node (native CPU) next to DDPM Studio; both download libtensorflow at install time',
  webgpu: 'needs a GPU driver with Vulkan (Linux), Metal (macOS) or D3D12 (Windows)',
  wasm: 'reinstall dependencies (npm ci): @tensorflow/tfjs-backend-wasm is part of DDPM Studio',
  cpu: 'tfjs-cpu is part of @tensorflow/tfjs',
};

const localRequire = createRequire(__filename);

function isModuleNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === 'MODULE_NOT_FOUND';
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0] : String(e));

// ---- tensorflow -------------------------------------------------------------------------------------------------

/**
 * Loads a native module with `@tensorflow/tfjs` and `@tensorflow/tfjs-core` resolving to this process's own copy.
 * Why: tfjs-node registers its 'tensorflow' backend with whatever tfjs it requires. Installed on its own (in the
 * extension's storage, next to nothing) that would be a second copy of tfjs-core, invisible to the engine, which is
 * bundled with its own. Only the load is redirected, and only for those two package names.
 */
function requireWithOurTfjs(req: NodeRequire, resolved: string): unknown {
  const M = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
  const original = M._load;
  M._load = function (this: unknown, request: string, parent: unknown, isMain: boolean) {
    if (request === '@tensorflow/tfjs' || request === '@tensorflow/tfjs-core') return tf;
    return original.call(this, request, parent, isMain);
  };
  try {
    return req(resolved);
  } finally {
    M._load = original;
  }
}

/**
 * Turns a native load failure into what the user can do about it. The GPU package links against the NVIDIA driver
 * (libcuda) and against CUDA 11.x / cuDNN 8.x runtime libraries, which newer CUDA installs do not provide.
 */
export function explainNativeLoadFailure(message: string): string {
  if (/libcuda\.so|nvcuda\.dll|CUDA driver/i.test(message)) {
    return `no NVIDIA driver was found (${message}); @tensorflow/tfjs-node-gpu needs an NVIDIA GPU and its driver. Use WebGPU or the native CPU backend instead`;
  }
  const lib =
    /(libcudart|libcublas(Lt)?|libcufft|libcurand|libcusolver|libcusparse|libcudnn)[\w.]*\.so[\w.]*|cudart64_\d+\.dll|cudnn64_\d+\.dll/i.exec(
      message,
    );
  if (lib) {
    return `the CUDA libraries it was built for are missing (${lib[0]}): @tensorflow/tfjs-node-gpu 4.x needs CUDA 11.2 and cuDNN 8.1 (newer CUDA versions do not provide these library versions)`;
  }
  if (/libtensorflow/i.test(message)) return `libtensorflow is missing or broken (${message}); reinstall the backend`;
  return message;
}

const NATIVE_GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NATIVE_CPU_PACKAGE = '@tensorflow/tfjs-node';

async function tryTensorflow(
  opts: BackendOptions,
  packages: readonly string[] = [NATIVE_GPU_PACKAGE, NATIVE_CPU_PACKAGE],
): Promise<{ ok: true; module: string; device: string } | { ok: false; reason: string }> {
  const dirs = [
    ...(opts.nativeSearchPaths ?? []),
    ...(process.env.DDPM_NATIVE_PATH ?? '').split(path.delimiter).filter(Boolean),
  ];
  const requirers = [localRequire, ...dirs.map((dir) => createRequire(path.join(dir, 'noop.js')))];
  const problems: string[] = [];
  for (const mod of packages) {
    for (const req of requirers) {
      let resolved: string;
      try {
        resolved = req.resolve(mod);
      } catch {
        continue;
      }
      try {
        requireWithOurTfjs(req, resolved);
      } catch (e) {
        problems.push(`${mod} is installed but failed to load: ${explainNativeLoadFailure(errorText(e))}`);
        continue;
      }
      if (!tf.findBackendFactory('tensorflow')) {
        problems.push(
          `${mod} loaded but registered with another copy of @tensorflow/tfjs-core (versions differ from ${tf.version.tfjs})`,
        );
        continue;
      }
      if (!(await tf.setBackend('tensorflow'))) {
        problems.push(`${mod} loaded but its backend failed to initialise`);
        continue;
      }
      const gpu = mod.endsWith('-gpu');
      // tfjs-node's backend says whether libtensorflow placed ops on a GPU (NodeJSKernelBackend.isUsingGpuDevice).
      const onGpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
      const device = gpu
        ? onGpu
          ? 'libtensorflow (CUDA, GPU)'
          : 'libtensorflow (CUDA package, no GPU visible: running on the CPU)'
        : 'libtensorflow (CPU)';
      return { ok: true, module: mod, device };
    }
  }
  if (problems.length) return { ok: false, reason: problems.join('; ') };
  return {
    ok: false,
    reason:
      packages.length === 1
        ? `${packages[0]} is not installed`
        : 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed',
  };
}

// ---- webgpu -----------------------------------------------------------------------------------------------------

interface WebGpuState {
  device: GPUDevice | null;
  /** The first error the device reported outside any error scope (validation, out of memory, internal). */
  fault: string | null;
}
const webgpuState: WebGpuState = { device: null, fault: null };

/**
 * Thrown when the GPU reported an error: a command that failed validation or ran out of memory is skipped by
 * WebGPU, and tfjs reads back whatever the buffers held, so every result since then is garbage.
 */
export class BackendFaultError extends Error {
  constructor(
    readonly backend: string,
    detail: string,
  ) {
    super(`the ${backend} device reported an error, so results since then are invalid: ${detail}`);
    this.name = 'BackendFaultError';
  }
}

/** Throws BackendFaultError if the device has reported an error. Training and sampling call this after each step. */
export function assertBackendHealthy(): void {
  if (webgpuState.fault) throw new BackendFaultError('webgpu', webgpuState.fault);
}

function watchForDeviceErrors(device: GPUDevice): void {
  webgpuState.fault = null;
  // Without a listener Dawn only prints these; with one, the first is kept and the next step fails with it.
  device.addEventListener('uncapturederror', (ev: Event) => {
    const error = (ev as GPUUncapturedErrorEvent).error;
    const kind =
      typeof GPUOutOfMemoryError !== 'undefined' && error instanceof GPUOutOfMemoryError
        ? 'out of GPU memory'
        : (error?.constructor?.name ?? 'error');
    webgpuState.fault ??= `${kind}: ${
      String(error?.message ?? '')
        .split('\n')
        .find((l) => l.trim()) ?? ''
    }`.trim();
  });
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

function envFlags(): string[] {
  const raw = process.env.DDPM_WEBGPU_FLAGS;
  return raw
    ? raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

async function tryWebgpu(
  opts: BackendOptions,
  explicit: boolean,
): Promise<{ ok: true; device: string } | { ok: false; reason: string }> {
  let dawn: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (e) {
    return { ok: false, reason: `the Dawn module (npm 'webgpu') failed to load: ${errorText(e)}` };
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create(opts.webgpuFlags ?? envFlags());
  const featureLevel =
    opts.webgpuFeatureLevel ??
    (process.env.DDPM_WEBGPU_FEATURE_LEVEL as 'core' | 'compatibility' | undefined) ??
    'core';
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({
      featureLevel,
      powerPreference: 'high-performance',
    } as GPURequestAdapterOptions);
  } catch (e) {
    return { ok: false, reason: `requestAdapter failed: ${errorText(e)}` };
  }
  // Without a driver Dawn returns null, and tfjs' own factory would then crash on `adapter.features`.
  if (!adapter) return { ok: false, reason: `no WebGPU adapter found (${HOW_TO_GET.webgpu})` };
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const name =
    [info?.vendor, info?.architecture, info?.device, info?.description]
      .filter((s) => s && String(s).length)
      .join(' ') || 'unknown adapter';
  const software =
    SOFTWARE_ADAPTER.test(name) || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  if (software && !explicit && !opts.allowSoftwareAdapter) {
    return { ok: false, reason: `only a software adapter was found (${name}); it is slower than wasm` };
  }
  if (featureLevel !== 'core') {
    // tfjs requests its own adapter with default options, which a compatibility-only driver (Dawn on GL ES) refuses.
    const request = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = (o?: GPURequestAdapterOptions) => request({ ...o, featureLevel } as GPURequestAdapterOptions);
  }
  if (typeof navigator === 'undefined') {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else {
    Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  }
  // The tfjs webgpu backend registers itself at import time only if navigator.gpu exists, hence the late import.
  const webgpuModule = await import('@tensorflow/tfjs-backend-webgpu');
  let pool: 'classes' | 'exact';
  try {
    registerWebgpuTrainingKernels();
    enableWebgpuDropout(webgpuModule.webgpu_util);
    pool = webgpuPoolFromEnv();
  } catch (e) {
    return { ok: false, reason: errorText(e) };
  }
  try {
    if (!(await tf.setBackend('webgpu'))) return { ok: false, reason: `tfjs could not initialise WebGPU on ${name}` };
  } catch (e) {
    return { ok: false, reason: `tfjs could not initialise WebGPU on ${name}: ${errorText(e)}` };
  }
  if (pool === 'classes') installWebgpuBufferPool(tf.backend());
  const backend = tf.backend() as unknown as { device?: GPUDevice };
  webgpuState.device = backend.device ?? null;
  if (webgpuState.device) watchForDeviceErrors(webgpuState.device);
  return { ok: true, device: software ? `${name} (software)` : name };
}

// ---- wasm -------------------------------------------------------------------------------------------------------

function findWasmDir(opts: BackendOptions): string {
  // In a packaged extension the .wasm files sit next to the bundle and the npm package itself is not shipped.
  const fromPackage = (): string | undefined => {
    try {
      return path.dirname(localRequire.resolve('@tensorflow/tfjs-backend-wasm'));
    } catch {
      return undefined;
    }
  };
  const candidates = [opts.wasmDir, __dirname, fromPackage()];
  for (const dir of candidates) {
    if (dir && fs.existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir;
  }
  throw new Error('the tfjs wasm binaries (tfjs-backend-wasm*.wasm) were not found');
}

async function tryWasm(opts: BackendOptions): Promise<{ ok: true; device: string } | { ok: false; reason: string }> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // setWasmPaths wants a trailing separator: it concatenates file names to it.
    wasm.setWasmPaths(findWasmDir(opts) + path.sep);
    registerWasmTrainingKernels();
    if (!(await tf.setBackend('wasm'))) return { ok: false, reason: 'tfjs could not initialise the wasm backend' };
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return { ok: true, device: `WebAssembly${simd ? ' SIMD' : ''} (XNNPACK)` };
  } catch (e) {
    if (isModuleNotFound(e)) return { ok: false, reason: HOW_TO_GET.wasm };
    return { ok: false, reason: errorText(e) };
  }
}

// ---- selection --------------------------------------------------------------------------------------------------

let current: BackendReport | null = null;

/** Initialises tfjs on the chosen backend. Call once per process, before any tensor is created. */
export async function initBackend(choice: BackendChoice = 'auto', opts: BackendOptions = {}): Promise<BackendReport> {
  if (choice !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(choice)) {
    throw new Error(`unknown backend '${String(choice)}': choose one of auto, ${BACKEND_NAMES.join(', ')}`);
  }
  if (current) {
    if (choice === 'auto' || choice === current.name) return current;
    throw new Error(
      `the ${current.name} backend is already initialised in this process; start a new process to use ${choice}`,
    );
  }
  // `auto`: a GPU first, the CUDA build of libtensorflow before WebGPU; then the CPU build of libtensorflow, then wasm.
  // (A machine with both a GPU and only the CPU build installed trains faster on the GPU.)
  const order: { name: BackendName; packages?: readonly string[] }[] =
    choice === 'auto'
      ? [
          { name: 'tensorflow', packages: [NATIVE_GPU_PACKAGE] },
          { name: 'webgpu' },
          { name: 'tensorflow', packages: [NATIVE_CPU_PACKAGE] },
          { name: 'wasm' },
          { name: 'cpu' },
        ]
      : [{ name: choice }];
  const attempts: BackendAttempt[] = [];
  for (const { name, packages } of order) {
    let r: { ok: true; device: string; module?: string } | { ok: false; reason: string };
    switch (name) {
      case 'tensorflow':
        r = await tryTensorflow(opts, packages);
        break;
      case 'webgpu':
        r = await tryWebgpu(opts, choice === 'webgpu');
        break;
      case 'wasm':
        r = await tryWasm(opts);
        break;
      case 'cpu':
        r = (await tf.setBackend('cpu'))
          ? { ok: true, device: 'JavaScript (tfjs-cpu, slow)' }
          : { ok: false, reason: 'tfjs-cpu failed to initialise' };
        break;
    }
    if (r.ok) {
      await tf.ready();
      attempts.push({ name, ok: true });
      current = { name, device: r.device, attempts, ...(r.module ? { module: r.module } : {}) };
      return current;
    }
    attempts.push({ name, ok: false, reason: r.reason });
  }
  if (choice !== 'auto') {
    const reason = attempts[0].reason ?? 'unknown';
    throw new BackendUnavailableError(
      choice,
      reason.includes(HOW_TO_GET[choice]) ? reason : `${reason}. To get it: ${HOW_TO_GET[choice]}`,
      attempts,
    );
  }
  throw new BackendUnavailableError('cpu', attempts.map((a) => `${a.name}: ${a.reason}`).join('; '), attempts);
}

/**
 * Gives memory that tensors no longer use back to the device: on WebGPU, the free buffers of our pool (a finished
 * job's activations would otherwise stay reserved while the sidecar idles or samples). Returns the bytes released.
 */
export function releaseCachedMemory(): number {
  if (current?.name !== 'webgpu') return 0;
  const pool = (tf.backend() as unknown as { bufferManager?: unknown }).bufferManager;
  return pool instanceof SizeClassBufferPool ? pool.releaseFree() : 0;
}

export function currentBackend(): BackendReport | null {
  return current;
}

/**
 * Releases the backend in an order that is safe for Dawn: pending reads must have finished (callers await their
 * `data()` calls), then the queue drains, the backend goes, the device is destroyed, and navigator.gpu is removed.
 */
export async function shutdownBackend(): Promise<void> {
  if (!current) return;
  if (current.name === 'webgpu' && webgpuState.device) {
    const device = webgpuState.device;
    await device.queue.onSubmittedWorkDone();
    tf.removeBackend('webgpu');
    device.destroy();
    webgpuState.device = null;
    if (typeof navigator !== 'undefined') delete (navigator as { gpu?: unknown }).gpu;
  }
  current = null;
}
