// The pure logic behind the pickers, the palette's when clauses, the job log, the backend info document and the
// checkpoint budget: what extension/workspaceCandidates.ts, jobLog.ts, backendInfoReport.ts and checkpointBudget.ts
// compute, on plain values (the real pickers run in VS Code: test/e2e).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  checkpointCandidates,
  cifarCandidates,
  diffusersCandidates,
  formatBytes,
  idxCandidates,
  imageCandidates,
  imageFolderCandidates,
  isImage,
  selectedImages,
} from '../../extension/workspaceCandidates.ts';
import { formatDuration, formatParams, startJob } from '../../extension/jobLog.ts';
import { backendInfoMarkdown, type BackendInfoFacts } from '../../extension/backendInfoReport.ts';
import { checkpointBudget, checkpointBytes, checkpointsSaved } from '../../extension/checkpointBudget.ts';
import { nvidiaGpuMayExist } from '../../extension/nativeBackendInstaller.ts';
import { repoRoot } from '../helpers/paths.ts';

const ROOT = '/ws';
const p = (...parts: string[]) => path.join(ROOT, ...parts);

test('images: PNG, JPEG and WebP in any case; the explorer selection keeps its images, in order', () => {
  assert.deepEqual(['a.png', 'b.JPG', 'c.jpeg', 'd.webp', 'e.gif', 'f.png.txt', 'png'].map(isImage), [
    true,
    true,
    true,
    true,
    false,
    false,
    false,
  ]);
  assert.deepEqual(selectedImages(p('a.png'), [p('a.png'), p('b.png')]), [p('a.png'), p('b.png')]);
  assert.deepEqual(selectedImages(p('a.png'), [p('a.png'), p('notes.txt')]), [p('a.png')], 'an image and a text file');
  assert.deepEqual(selectedImages(p('a.png'), undefined), [p('a.png')], 'no multi-selection: the clicked file');
  assert.deepEqual(selectedImages(p('notes.txt'), []), []);
  assert.deepEqual(selectedImages(undefined, undefined), [], 'the palette');
});

test('image candidates: folder by folder, names in natural order (digit-2 before digit-10)', () => {
  const files = [p('digits', 'digit-10.png'), p('digits', 'digit-2.png'), p('b.jpg'), p('notes.txt'), p('a', 'z.webp')];
  assert.deepEqual(
    imageCandidates(ROOT, files).map((c) => `${c.description}/${c.label}`),
    ['./b.jpg', 'a/z.webp', 'digits/digit-2.png', 'digits/digit-10.png'],
  );
  assert.equal(imageCandidates(ROOT, files)[2].file, p('digits', 'digit-2.png'));
});

test('image folders: each counts the images below it, the fullest first; a capped listing says "+"', () => {
  const files = [
    ...Array.from({ length: 3 }, (_, i) => p('data', 'cats', `${i}.png`)),
    ...Array.from({ length: 2 }, (_, i) => p('data', 'dogs', `${i}.jpg`)),
    p('icon.png'),
    p('data', 'readme.md'),
  ];
  const c = imageFolderCandidates(ROOT, files);
  assert.deepEqual(
    c.map((x) => [x.label, x.description]),
    [
      ['ws', '6 images'],
      ['data', '5 images'],
      ['data/cats', '3 images'],
      ['data/dogs', '2 images'],
    ],
  );
  assert.equal(c[1].file, p('data'));
  assert.deepEqual(
    imageFolderCandidates(ROOT, [p('x', '1.png')], true).map((x) => x.description),
    ['1+ images', '1+ images'],
  );
  assert.deepEqual(imageFolderCandidates(ROOT, [p('x', '1.png')])[1].description, '1 image');
  assert.deepEqual(imageFolderCandidates(ROOT, []), []);
});

test('IDX and CIFAR-10 candidates: image files of the IDX format (training first); folders of binary batches', () => {
  const idx = idxCandidates(ROOT, [
    p('mnist', 't10k-images-idx3-ubyte.gz'),
    p('mnist', 'train-labels-idx1-ubyte.gz'),
    p('fashion', 'train-images-idx3-ubyte'),
    p('mnist', 'train-images-idx3-ubyte.gz'),
  ]);
  assert.deepEqual(
    idx.map((c) => `${c.description}/${c.label}`),
    ['fashion/train-images-idx3-ubyte', 'mnist/train-images-idx3-ubyte.gz', 'mnist/t10k-images-idx3-ubyte.gz'],
  );
  const cifar = cifarCandidates(ROOT, [
    ...[1, 2, 3, 4, 5].map((i) => p('cifar-10-batches-bin', `data_batch_${i}.bin`)),
    p('cifar-10-batches-bin', 'test_batch.bin'),
    p('cifar-10-batches-bin', 'batches.meta.txt'),
    p('only-test', 'test_batch.bin'),
  ]);
  assert.deepEqual(
    cifar.map((c) => [c.label, c.description, c.file]),
    [
      ['cifar-10-batches-bin', '5 training batches + test batch', p('cifar-10-batches-bin')],
      ['only-test', 'test batch', p('only-test')],
    ],
  );
});

test('diffusers candidates: folders with config.json beside diffusion_pytorch_model*.safetensors or .bin', () => {
  const c = diffusersCandidates(ROOT, [
    p('ddpm-church', 'config.json'),
    p('ddpm-church', 'diffusion_pytorch_model.bin'),
    p('both', 'config.json'),
    p('both', 'diffusion_pytorch_model.bin'),
    p('both', 'diffusion_pytorch_model.safetensors'),
    p('ddpm-cifar10', 'unet', 'config.json'),
    p('ddpm-cifar10', 'unet', 'diffusion_pytorch_model.safetensors'),
    p('ddpm-cifar10', 'unet', 'diffusion_pytorch_model.fp16.safetensors'),
    p('ddpm-cifar10', 'scheduler', 'config.json'),
    p('loose', 'diffusion_pytorch_model.safetensors'),
    p('tiny-unet', 'config.json'),
    p('tiny-unet', 'diffusion_pytorch_model.fp16.safetensors'),
  ]);
  assert.deepEqual(
    c.map((x) => [x.label, x.description, x.file]),
    [
      ['both', 'config.json + diffusion_pytorch_model.safetensors', p('both')],
      ['ddpm-church', 'config.json + diffusion_pytorch_model.bin', p('ddpm-church')],
      ['ddpm-cifar10/unet', 'config.json + diffusion_pytorch_model.safetensors', p('ddpm-cifar10', 'unet')],
      ['tiny-unet', 'config.json + diffusion_pytorch_model.fp16.safetensors', p('tiny-unet')],
    ],
  );
});

test('checkpoint candidates: newest first, a run’s latest before its ckpt files of the same time', () => {
  const c = checkpointCandidates(ROOT, [
    { file: p('runs', 'a', 'ckpt-0000250.safetensors'), mtime: 5 },
    { file: p('runs', 'a', 'latest.safetensors'), mtime: 5 },
    { file: p('old.safetensors'), mtime: 1 },
    { file: p('runs', 'b', 'latest.safetensors'), mtime: 9 },
    { file: p('notes.txt'), mtime: 10 },
  ]);
  assert.deepEqual(
    c.map((x) => `${x.description}/${x.label}`),
    ['runs/b/latest.safetensors', 'runs/a/latest.safetensors', 'runs/a/ckpt-0000250.safetensors', './old.safetensors'],
  );
});

test('sizes in decimal units, three significant digits', () => {
  assert.deepEqual([0, 999, 1000, 17_000_000, 571_000_000, 1_142_000_000, 12_345_678, 2.5e12].map(formatBytes), [
    '0 B',
    '999 B',
    '1 kB',
    '17 MB',
    '571 MB',
    '1.14 GB',
    '12.3 MB',
    '2.5 TB',
  ]);
});

test('checkpoint budget: 16 bytes per parameter; latest + min(keep, saves) files; above 500 MB it asks', () => {
  assert.equal(checkpointBytes(1000), 16_000 + 64 * 1024);
  assert.deepEqual([checkpointsSaved(2000, 250), checkpointsSaved(7, 250), checkpointsSaved(250, 250)], [8, 1, 1]);
  assert.equal(checkpointsSaved(251, 250), 2);
  assert.equal(checkpointsSaved(100, 0), 1, 'saveEvery 0: only the end');
  // The paper's CIFAR-10 model (35.7M parameters): 571 MB each; a 2000-step run keeps latest + 3.
  const cifar = checkpointBudget(35_722_000, 3, 2000, 250);
  assert.equal(cifar.files, 4);
  assert.equal(cifar.total, 4 * cifar.each);
  assert.equal(cifar.confirm, true);
  assert.equal(cifar.text, '4 checkpoints × 572 MB = 2.29 GB (latest + 3 kept)');
  // A 7-step run saves once: latest and its ckpt file (the 1.1 GB of the issue).
  assert.equal(checkpointBudget(35_722_000, 3, 7, 250).text, '2 checkpoints × 572 MB = 1.14 GB (latest + 1 kept)');
  // The mnist preset: well under the threshold.
  const mnist = checkpointBudget(1_060_000, 3, 2000, 250);
  assert.equal(mnist.confirm, false);
  assert.equal(mnist.text, '4 checkpoints × 17 MB = 68.1 MB (latest + 3 kept)');
});

test('job log: a start line with the parameters, one end line with the duration; tokens and images left out', () => {
  assert.equal(
    formatParams({ checkpoint: '/m/a b.safetensors', n: 16, t: [250, 500], token: 'x', seed: 0, none: undefined }),
    'checkpoint="/m/a b.safetensors" n=16 t=250,500 seed=0',
  );
  assert.deepEqual([0.84, 12.34, 245, 7380].map(formatDuration), ['0.8 s', '12.3 s', '4 min 05 s', '2 h 03 min']);
  const lines: string[] = [];
  const sink = {
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  };
  let now = 1000;
  const a = startJob(sink, 'sample', { n: 4, seed: 7 }, () => now);
  now += 2500;
  a.done('4 images');
  a.failed('late'); // only the first end counts
  const b = startJob(sink, 'train', { preset: 'tiny' }, () => now);
  now += 61_000;
  b.failed('out of\nmemory');
  const c = startJob(sink, 'evaluate', {}, () => now);
  c.stopped();
  const id = (l: string) => /\[(\w+) #(\d+)\]/.exec(l)!.slice(1);
  assert.equal(lines.length, 6);
  assert.deepEqual(
    lines.map((l) => l.replace(/#\d+/, '#N')),
    [
      'info [sample #N] started: n=4 seed=7',
      'info [sample #N] done after 2.5 s: 4 images',
      'info [train #N] started: preset=tiny',
      'error [train #N] failed after 1 min 01 s: out of memory',
      'info [evaluate #N] started',
      'info [evaluate #N] stopped after 0.0 s',
    ],
  );
  assert.deepEqual(id(lines[0]), id(lines[1]), 'start and end carry the same id');
  assert.notDeepEqual(id(lines[0]), id(lines[2]));
});

const facts = (o: Partial<BackendInfoFacts> = {}): BackendInfoFacts => ({
  info: {
    version: '0.1.0',
    protocol: 1,
    node: 'v20.19.0',
    tfjs: '4.22.0',
    backend: {
      name: 'wasm',
      device: 'WebAssembly (SIMD)',
      attempts: [
        { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node is not installed' },
        {
          name: 'webgpu',
          ok: false,
          reason: 'only a software adapter was found (SwiftShader); it is slower than wasm',
        },
        { name: 'wasm', ok: true },
      ],
    },
    presets: [],
    training: null,
  },
  setting: 'auto',
  cores: 2,
  sampleWorkers: 'auto',
  trainWorkers: 4,
  native: null,
  gpuMayExist: false,
  ...o,
});

test('backend info: backend, device, threads, every backend passed over with its reason, the native install state', () => {
  const md = backendInfoMarkdown(facts());
  assert.match(md, /^# DDPM Studio — compute backend$/m);
  assert.match(md, /^\*\*wasm\*\* on \*\*WebAssembly \(SIMD\)\*\*$/m);
  assert.match(md, /^\| Device \/ adapter \| WebAssembly \(SIMD\) \|$/m);
  assert.match(md, /^\| CPU cores \| 2 \|$/m);
  assert.match(md, /^\| Sampling threads \(`ddpm.sampleWorkers`\) \| auto: up to 2 \(one per core, at most 8\)/m);
  assert.match(md, /^\| Training threads \(`ddpm.train.workers`\) \| 4 \(set\) \|$/m);
  assert.match(md, /^1\. \*\*tensorflow\*\* — passed over: @tensorflow\/tfjs-node is not installed$/m);
  assert.match(md, /^2\. \*\*webgpu\*\* — passed over: only a software adapter was found \(SwiftShader\)/m);
  assert.match(md, /^3\. \*\*wasm\*\* — \*\*in use\*\*$/m);
  assert.match(md, /^Not installed\.$/m);
  assert.match(md, /DDPM: Install Native CPU Backend/);
  assert.doesNotMatch(md, /Install CUDA Backend/);
  // A GPU machine with the CUDA build installed and used; a pipe in a device name does not break the table.
  const gpu = backendInfoMarkdown(
    facts({
      info: {
        ...facts().info,
        backend: {
          name: 'tensorflow',
          device: 'libtensorflow (CUDA | GPU)',
          attempts: [{ name: 'tensorflow', ok: true }],
        },
        training: { jobId: 'j1', step: 5, steps: 10 },
      },
      native: {
        package: '@tensorflow/tfjs-node-gpu',
        version: '4.22.0',
        device: 'libtensorflow (CUDA, GPU)',
        dir: '/s/native-backend',
        installedAt: '2026-01-01T00:00:00Z',
      },
      gpuMayExist: true,
    }),
  );
  assert.match(gpu, /^\| Device \/ adapter \| libtensorflow \(CUDA \\\| GPU\) \|$/m);
  assert.match(gpu, /^\| Sampling threads \(`ddpm.sampleWorkers`\) \| not used: tensorflow runs on its device \|$/m);
  assert.match(gpu, /^\| Training \| job j1: step 5 of 10 \|$/m);
  assert.match(gpu, /^Installed: \*\*@tensorflow\/tfjs-node-gpu 4\.22\.0\*\* — libtensorflow \(CUDA, GPU\)/m);
  assert.match(gpu, /^The sidecar uses it\.$/m);
  assert.match(gpu, /DDPM: Remove Native Backend/);
});

test('an NVIDIA GPU may exist: the driver’s files on Linux and WSL, nvidia-smi.exe on Windows, never on macOS', () => {
  const has = (files: string[]) => (f: string) => files.includes(f);
  assert.equal(nvidiaGpuMayExist('linux', has([])), false);
  assert.equal(nvidiaGpuMayExist('linux', has(['/dev/nvidiactl'])), true);
  assert.equal(nvidiaGpuMayExist('linux', has(['/proc/driver/nvidia/version'])), true);
  assert.equal(nvidiaGpuMayExist('linux', has(['/usr/lib/wsl/lib/libcuda.so'])), true);
  assert.equal(nvidiaGpuMayExist('win32', has(['D:\\Win\\System32\\nvidia-smi.exe']), { SystemRoot: 'D:\\Win' }), true);
  assert.equal(nvidiaGpuMayExist('win32', has([]), { SystemRoot: 'D:\\Win' }), false);
  assert.equal(
    nvidiaGpuMayExist('darwin', () => true),
    false,
  );
});

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));

test('package.json: the explorer offers Interpolate for exactly two selected images; palette entries where they apply', () => {
  const explorer = pkg.contributes.menus['explorer/context'] as { command: string; when: string }[];
  const interpolate = explorer.find((m) => m.command === 'ddpm.interpolate')!;
  assert.ok(interpolate, 'ddpm.interpolate is in the explorer context menu');
  const clauses = interpolate.when.split('&&').map((c) => c.trim());
  assert.ok(clauses.includes('listDoubleSelection'), 'exactly two selected');
  assert.ok(clauses.includes('!explorerResourceIsFolder'), 'not on a folder');
  const ext = clauses.find((c) => c.startsWith('resourceExtname =~'))!;
  const re = new RegExp(/^resourceExtname =~ \/(.*)\/(\w*)$/.exec(ext)![1], /\/(\w*)$/.exec(ext)![1]);
  assert.deepEqual(
    ['.png', '.PNG', '.jpg', '.jpeg', '.webp', '.txt', '.gif', '.png.txt'].map((e) => re.test(e)),
    [true, true, true, true, true, false, false, false],
  );
  const palette = Object.fromEntries(
    (pkg.contributes.menus.commandPalette as { command: string; when: string }[]).map((m) => [m.command, m.when]),
  );
  assert.equal(palette['ddpm.installCudaBackend'], 'ddpm.gpuMayExist && ddpm.nativeBackend != cuda');
  assert.equal(palette['ddpm.installNativeCpuBackend'], '!ddpm.gpuMayExist && !ddpm.nativeBackend');
  assert.equal(palette['ddpm.removeNativeBackend'], 'ddpm.nativeBackend');
  assert.equal(palette['ddpm.info'], 'false', 'the scripts’ info command stays out of the palette');
  assert.equal(palette['ddpm.stop'], 'ddpm.training');
  const titles = Object.fromEntries(
    (pkg.contributes.commands as { command: string; title: string }[]).map((c) => [c.command, c.title]),
  );
  assert.equal(titles['ddpm.showBackendInfo'], 'Show Backend Info');
  assert.equal(titles['ddpm.installNativeCpuBackend'], 'Install Native CPU Backend');
  // The keys are set on activation: the extension activates once the window is up.
  assert.ok(pkg.activationEvents.includes('onStartupFinished'));
});
