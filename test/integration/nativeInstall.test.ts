// DDPM: Install CUDA Backend, below the UI: real npm, the real sidecar (dist/sidecar.js --probe), real folders.
//
// libtensorflow itself cannot be installed on machines without internet access, so the successful installs use
// stand-in packages with the real package names, packed with `npm pack` and installed from the tarball by npm.
// They register a 'tensorflow' backend the way tfjs-node does (require('@tensorflow/tfjs'), registerBackend),
// reusing tfjs-cpu's kernels, or fail to load with the messages the real ones give. The failure paths that need no
// stand-in run the real thing: @tensorflow/tfjs-node@4.22.0 from the npm registry, with libtensorflow's download
// pointed at a closed port.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  INSTALL_LOCK,
  installedNativeBackend,
  installNativeBackend,
  MARKER_FILE,
  NATIVE_DIR,
  NativeInstallError,
  removeNativeBackend,
  type InstallOptions,
} from '../../extension/nativeBackendInstaller.ts';
import { repoRoot } from '../helpers/paths.ts';

const sidecarPath = path.join(repoRoot, 'dist', 'sidecar.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-native-install-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

// npm must not touch the user's cache or config, and must fail fast where it cannot connect.
const npmEnv = {
  npm_config_cache: path.join(work, 'npm-cache'),
  npm_config_userconfig: path.join(work, 'npmrc'),
  npm_config_fetch_retries: '0',
  npm_config_fetch_timeout: '20000',
};

/** A stand-in package: `body` is the CommonJS of its index.js. Returns the tarball npm packed. */
function standIn(name: string, body: string): string {
  const dir = fs.mkdtempSync(path.join(work, 'pkg-'));
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name, version: '4.22.0', main: 'index.js', license: 'Apache-2.0' }),
  );
  fs.writeFileSync(path.join(dir, 'index.js'), body);
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...npmEnv },
  });
  return path.join(dir, out.trim().split('\n').pop()!);
}

/** Registers 'tensorflow' on tfjs-cpu's kernels, as tfjs-node registers libtensorflow's. */
const workingBackend = (usesGpu: boolean) => `
const tf = require('@tensorflow/tfjs');
for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'tensorflow' });
tf.registerBackend('tensorflow', () => Object.assign(tf.findBackendFactory('cpu')(), { isUsingGpuDevice: ${usesGpu} }), 3);
`;

const failingLoad = (message: string) => `throw new Error(${JSON.stringify(message)});\n`;

function options(
  storageDir: string,
  extra: Partial<InstallOptions> = {},
): InstallOptions & { lines: string[]; stages: string[] } {
  const lines: string[] = [];
  const stages: string[] = [];
  return {
    storageDir,
    variant: 'cpu',
    sidecarPath,
    env: npmEnv,
    onLog: (l) => lines.push(l),
    onStage: (s) => stages.push(s),
    lines,
    stages,
    ...extra,
  };
}

/** Everything in the storage folder, for "nothing changed" checks. */
const listing = (dir: string): string[] =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : [];

async function rejects(p: Promise<unknown>, kind: string, message: RegExp): Promise<NativeInstallError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof NativeInstallError, `not a NativeInstallError: ${String(e)}`);
    assert.equal(e.kind, kind, `${e.kind}: ${e.message}\n${e.detail}`);
    assert.match(e.message, message);
    return e;
  }
  assert.fail('the install succeeded');
}

function probe(args: string[]): { ok: boolean; backend?: string; device?: string; module?: string; error?: string } {
  const r = spawnSync(process.execPath, [sidecarPath, '--probe', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, DDPM_WEBGPU_FLAGS: 'backend=d3d12' },
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no probe result (exit ${r.status}): ${r.stderr.slice(-1500)}`);
  return JSON.parse(line);
}

test('a native CPU backend installs into its own folder, passes the probe, and auto picks it from then on', async () => {
  const storage = path.join(work, 'store-ok');
  const o = options(storage, { packageSpec: standIn('@tensorflow/tfjs-node', workingBackend(false)) });
  const installed = await installNativeBackend(o);
  assert.equal(installed.variant, 'cpu');
  assert.equal(installed.package, '@tensorflow/tfjs-node');
  assert.equal(installed.device, 'libtensorflow (CPU)');
  assert.equal(installed.dir, path.join(storage, NATIVE_DIR));
  assert.deepEqual(installedNativeBackend(storage), installed);
  // Only the active install is left: no staging or backup folders.
  assert.deepEqual(fs.readdirSync(storage), [NATIVE_DIR]);
  assert.ok(fs.existsSync(path.join(installed.dir, 'node_modules', '@tensorflow', 'tfjs-node', 'index.js')));
  assert.ok(o.stages.some((s) => /Installing .*tfjs-node/.test(s)) && o.stages.some((s) => /Checking/.test(s)));
  assert.ok(o.lines.length > 0, 'npm and the probe printed nothing to the log');

  // The sidecar, asked for `auto` with this folder, takes it before WebGPU and wasm, and it computes.
  const auto = probe(['--backend', 'auto', '--native-path', installed.dir]);
  assert.equal(auto.ok, true, auto.error);
  assert.equal(auto.backend, 'tensorflow');
  assert.equal(auto.module, '@tensorflow/tfjs-node');
  // Without the folder, auto falls back as before.
  assert.notEqual(probe(['--backend', 'auto']).backend, 'tensorflow');

  // A second install replaces the first in one swap.
  const again = await installNativeBackend(
    options(storage, { packageSpec: standIn('@tensorflow/tfjs-node', workingBackend(false)) }),
  );
  assert.ok(again.installedAt >= installed.installedAt);
  assert.deepEqual(fs.readdirSync(storage), [NATIVE_DIR]);

  assert.equal(removeNativeBackend(storage), true);
  assert.equal(installedNativeBackend(storage), null);
  assert.equal(removeNativeBackend(storage), false);
});

test('the CUDA package without a usable GPU, driver or CUDA 11 libraries: a clear reason, nothing installed, the old install kept', async () => {
  const storage = path.join(work, 'store-gpu');
  const previous = await installNativeBackend(
    options(storage, { packageSpec: standIn('@tensorflow/tfjs-node', workingBackend(false)) }),
  );
  const before = listing(storage);
  const marker = fs.readFileSync(path.join(previous.dir, MARKER_FILE), 'utf8');

  const cases: { body: string; kind: string; message: RegExp }[] = [
    {
      body: workingBackend(false),
      kind: 'no-gpu',
      message:
        /tfjs-node-gpu loads, but TensorFlow found no usable GPU \(libtensorflow \(CUDA package, no GPU visible: running on the CPU\)\)\. Nothing was installed/,
    },
    {
      body: failingLoad('libcuda.so.1: cannot open shared object file: No such file or directory'),
      kind: 'no-driver',
      message:
        /does not work here: .*no NVIDIA driver was found \(libcuda\.so\.1: cannot open shared object file.*\); @tensorflow\/tfjs-node-gpu needs an NVIDIA GPU and its driver/,
    },
    {
      body: failingLoad('libcudart.so.11.0: cannot open shared object file: No such file or directory'),
      kind: 'cuda-mismatch',
      message:
        /the CUDA libraries it was built for are missing \(libcudart\.so\.11\.0\): @tensorflow\/tfjs-node-gpu 4\.x needs CUDA 11\.2 and cuDNN 8\.1/,
    },
    {
      body: failingLoad('something else broke'),
      kind: 'load-failed',
      message: /does not work here: .*something else broke.*Nothing was installed/,
    },
  ];
  for (const c of cases) {
    await rejects(
      installNativeBackend(
        options(storage, { variant: 'cuda', packageSpec: standIn('@tensorflow/tfjs-node-gpu', c.body) }),
      ),
      c.kind,
      c.message,
    );
    assert.deepEqual(listing(storage), before, `${c.kind}: the storage folder changed`);
    assert.equal(fs.readFileSync(path.join(previous.dir, MARKER_FILE), 'utf8'), marker);
  }
  // The earlier install still works.
  assert.equal(probe(['--backend', 'tensorflow', '--native-path', previous.dir]).ok, true);
});

test('offline: the real @tensorflow/tfjs-node cannot fetch libtensorflow, so the install fails clearly and leaves nothing', async () => {
  const storage = path.join(work, 'store-offline');
  // Closed port: the same failure with or without internet access on the machine running the test.
  const e = await rejects(
    installNativeBackend(options(storage, { env: { ...npmEnv, TFJS_NODE_CDN_STORAGE: 'http://127.0.0.1:9/' } })),
    'offline',
    /Could not download @tensorflow\/tfjs-node( \(.+ could not be reached\))?: no internet, a proxy, or a blocked host\. Nothing was installed/,
  );
  assert.match(e.detail, /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/);
  assert.deepEqual(fs.readdirSync(storage), []);

  // The registry itself unreachable: npm fails before installing anything.
  const storage2 = path.join(work, 'store-noregistry');
  await rejects(
    installNativeBackend(options(storage2, { env: { ...npmEnv, npm_config_registry: 'http://127.0.0.1:9/' } })),
    'offline',
    /Could not download @tensorflow\/tfjs-node.*Nothing was installed/,
  );
  assert.deepEqual(fs.readdirSync(storage2), []);
});

test('npm missing, and a cancel while npm runs: a clear error, nothing left behind', async () => {
  const storage = path.join(work, 'store-misc');
  await rejects(
    installNativeBackend(options(storage, { npmCli: path.join(work, 'no-such-npm-cli.js') })),
    'npm-missing',
    /npm was not found/,
  );
  assert.deepEqual(fs.readdirSync(storage), []);

  const ac = new AbortController();
  // The real package, with libtensorflow's download pointed at an address that never answers: cancel while waiting.
  const o = options(storage, { signal: ac.signal, env: { ...npmEnv, TFJS_NODE_CDN_STORAGE: 'http://10.255.255.1/' } });
  const started = Date.now();
  setTimeout(() => ac.abort(), 1500);
  await rejects(installNativeBackend(o), 'cancelled', /cancelled; nothing was changed/);
  assert.ok(Date.now() - started < 60_000, 'the cancel did not stop npm promptly');
  assert.deepEqual(fs.readdirSync(storage), []);
});

test('leftovers of an interrupted install are cleaned up, and a folder without its marker does not count as installed', () => {
  const storage = path.join(work, 'store-leftovers');
  fs.mkdirSync(path.join(storage, '.native-staging-abc', 'node_modules'), { recursive: true });
  fs.mkdirSync(path.join(storage, NATIVE_DIR, 'node_modules'), { recursive: true });
  assert.equal(installedNativeBackend(storage), null);
  fs.writeFileSync(path.join(storage, NATIVE_DIR, MARKER_FILE), '{"variant":"cuda"');
  assert.equal(installedNativeBackend(storage), null, 'a truncated marker');
  removeNativeBackend(storage);
  assert.deepEqual(fs.readdirSync(storage), []);
});

test('a caller cannot hand npm an environment that runs code (NODE_OPTIONS=--require …): refused, nothing runs', async () => {
  const storage = path.join(work, 'store-env');
  const marker = path.join(work, 'pwned');
  const payload = path.join(work, 'payload.js');
  fs.writeFileSync(payload, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');`);
  await assert.rejects(
    installNativeBackend(
      options(storage, {
        packageSpec: standIn('@tensorflow/tfjs-node', workingBackend(false)),
        env: { ...npmEnv, NODE_OPTIONS: `--require ${payload}` } as Record<string, string>,
      }),
    ),
    /only npm settings \(npm_config_\*\) and TFJS_NODE_CDN_STORAGE may be set, not NODE_OPTIONS/,
  );
  assert.equal(fs.existsSync(marker), false);
  // NODE_OPTIONS inherited from the editor's own environment does not reach npm either.
  const tarball = standIn('@tensorflow/tfjs-node', workingBackend(false));
  process.env.NODE_OPTIONS = `--require ${payload}`;
  try {
    await installNativeBackend(options(storage, { packageSpec: tarball }));
  } finally {
    delete process.env.NODE_OPTIONS;
  }
  assert.equal(fs.existsSync(marker), false, 'the --require payload ran in npm');
  assert.ok(installedNativeBackend(storage));
});

test('two windows installing into one storage folder at once: the second is refused as busy, the first installs', async () => {
  const storage = path.join(work, 'store-race');
  const tarball = standIn('@tensorflow/tfjs-node', workingBackend(false));
  const results = await Promise.allSettled([
    installNativeBackend(options(storage, { packageSpec: tarball })),
    // The other window starts a moment later, while the first holds the lock.
    new Promise((r) => setTimeout(r, 50)).then(() => installNativeBackend(options(storage, { packageSpec: tarball }))),
  ]);
  assert.equal(results[0].status, 'fulfilled', String((results[0] as PromiseRejectedResult).reason));
  assert.equal(results[1].status, 'rejected');
  const e = (results[1] as PromiseRejectedResult).reason as NativeInstallError;
  assert.equal(e.kind, 'busy');
  assert.match(e.message, /Another VS Code window is installing or removing the native backend right now/);
  assert.deepEqual(fs.readdirSync(storage), [NATIVE_DIR]);
  // A lock left by a process that died is taken over.
  fs.writeFileSync(path.join(storage, INSTALL_LOCK), `999999 ${os.hostname()} dead`);
  assert.equal(removeNativeBackend(storage), true);
  assert.deepEqual(fs.readdirSync(storage), []);
});

test('a package path with shell metacharacters is passed to npm as one argument (no shell anywhere)', async () => {
  const storage = path.join(work, 'store-meta');
  const tarball = standIn('@tensorflow/tfjs-node', workingBackend(false));
  const odd = path.join(work, 'a dir & echo pwned; $(touch x)');
  fs.mkdirSync(odd);
  const moved = path.join(odd, path.basename(tarball));
  fs.copyFileSync(tarball, moved);
  const installed = await installNativeBackend(options(storage, { packageSpec: moved }));
  assert.equal(installed.device, 'libtensorflow (CPU)');
  assert.equal(fs.existsSync(path.join(work, 'x')), false);
});
