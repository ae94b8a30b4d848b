// Backend selection, each case in a fresh process (tfjs can initialise one backend per process). What needs the software
// WebGPU adapter (taking it, training on it) is in test/slow/backendWebgpu.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from '../helpers/paths.ts';
import { initInChild as init, NO_ADAPTER, SOFTWARE_ADAPTER } from '../helpers/backendProcess.ts';

const installed = (mod: string) => {
  try {
    createRequire(path.join(repoRoot, 'package.json')).resolve(mod);
    return true;
  } catch {
    return false;
  }
};
const nativeInstalled = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

test(
  'auto tries CUDA libtensorflow, then webgpu, then CPU libtensorflow, then wasm, and picks the first that works',
  { skip: nativeInstalled && 'tfjs-node is installed here' },
  () => {
    const o = init('auto', NO_ADAPTER);
    assert.ok(o.ok, o.message);
    assert.equal(o.report!.name, 'wasm');
    assert.match(o.report!.device, /WebAssembly/);
    assert.deepEqual(
      o.report!.attempts.map((a) => [a.name, a.ok]),
      [
        ['tensorflow', false],
        ['webgpu', false],
        ['tensorflow', false],
        ['wasm', true],
      ],
    );
    assert.match(o.report!.attempts[0].reason!, /^@tensorflow\/tfjs-node-gpu is not installed$/);
    assert.match(o.report!.attempts[1].reason!, /no WebGPU adapter/);
    assert.match(o.report!.attempts[2].reason!, /^@tensorflow\/tfjs-node is not installed$/);
  },
);

/**
 * A folder holding a stand-in @tensorflow/tfjs-node that registers a `tensorflow` backend (tfjs' JavaScript backend
 * under that name): the real package downloads libtensorflow at install, which CI cannot. Enough to see where `auto`
 * ranks it; no op runs on it.
 */
function withStandInNative(pkgName: string, body: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-native-'));
  try {
    const pkg = path.join(dir, 'node_modules', ...pkgName.split('/'));
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: pkgName, version: '4.22.0', main: 'index.js' }),
    );
    fs.writeFileSync(
      path.join(pkg, 'index.js'),
      "const tf = require('@tensorflow/tfjs');\ntf.registerBackend('tensorflow', tf.findBackendFactory('cpu'));\n",
    );
    body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test(
  'with only the CPU build of libtensorflow installed, auto tries a GPU (webgpu) before it',
  { skip: nativeInstalled && 'tfjs-node is installed here' },
  () => {
    withStandInNative('@tensorflow/tfjs-node', (dir) => {
      const auto = init('auto', NO_ADAPTER, ['--native-path', dir]);
      assert.ok(auto.ok, auto.message);
      assert.equal(auto.report!.name, 'tensorflow');
      assert.equal(auto.report!.device, 'libtensorflow (CPU)');
      assert.deepEqual(
        auto.report!.attempts.map((a) => [a.name, a.ok]),
        [
          ['tensorflow', false],
          ['webgpu', false],
          ['tensorflow', true],
        ],
      );
      const explicit = init('tensorflow', {}, ['--native-path', dir]);
      assert.equal(explicit.report!.name, 'tensorflow');
      assert.deepEqual(
        explicit.report!.attempts.map((a) => a.name),
        ['tensorflow'],
      );
    });
  },
);

test(
  'the CUDA build of libtensorflow comes before webgpu',
  { skip: nativeInstalled && 'tfjs-node is installed here' },
  () => {
    withStandInNative('@tensorflow/tfjs-node-gpu', (dir) => {
      const auto = init('auto', SOFTWARE_ADAPTER, ['--native-path', dir]);
      assert.ok(auto.ok, auto.message);
      assert.equal(auto.report!.name, 'tensorflow');
      assert.equal(auto.report!.module, '@tensorflow/tfjs-node-gpu');
      assert.deepEqual(
        auto.report!.attempts.map((a) => [a.name, a.ok]),
        [['tensorflow', true]],
      );
    });
  },
);

test(
  'asking for an unavailable backend fails with a message that says why and how to get it',
  { skip: nativeInstalled && 'tfjs-node is installed here' },
  () => {
    const tfn = init('tensorflow');
    assert.equal(tfn.ok, false);
    assert.equal(tfn.error, 'BackendUnavailableError');
    assert.match(
      tfn.message!,
      /backend 'tensorflow' is not available: neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed/,
    );
    assert.match(tfn.message!, /To get it: install @tensorflow\/tfjs-node-gpu/);

    const gpu = init('webgpu', NO_ADAPTER);
    assert.equal(gpu.ok, false);
    assert.match(
      gpu.message!,
      /backend 'webgpu' is not available: no WebGPU adapter found \(needs a GPU driver with Vulkan \(Linux\), Metal \(macOS\) or D3D12 \(Windows\)\)/,
    );

    const bogus = init('cuda');
    assert.equal(bogus.ok, false);
    assert.match(bogus.message!, /unknown backend 'cuda': choose one of auto, tensorflow, webgpu, wasm, cpu/);
  },
);

test(
  'a native backend that is installed but broken is reported as such, and auto moves on',
  { skip: nativeInstalled && 'tfjs-node is installed here' },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-native-'));
    try {
      const pkg = path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
      fs.mkdirSync(pkg, { recursive: true });
      fs.writeFileSync(
        path.join(pkg, 'package.json'),
        JSON.stringify({ name: '@tensorflow/tfjs-node', version: '4.22.0', main: 'index.js' }),
      );
      fs.writeFileSync(
        path.join(pkg, 'index.js'),
        "throw new Error('libtensorflow.so.2: cannot open shared object file');\n",
      );
      const explicit = init('tensorflow', {}, ['--native-path', dir]);
      assert.equal(explicit.ok, false);
      assert.match(
        explicit.message!,
        /@tensorflow\/tfjs-node is installed but failed to load: libtensorflow is missing or broken \(libtensorflow\.so\.2: cannot open shared object file\); reinstall the backend/,
      );
      const auto = init('auto', NO_ADAPTER, ['--native-path', dir]);
      assert.equal(auto.report!.name, 'wasm');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('cpu is always available when asked for explicitly', () => {
  const o = init('cpu');
  assert.ok(o.ok);
  assert.equal(o.report!.name, 'cpu');
});
