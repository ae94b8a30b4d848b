'use strict';
// DDPM: Install CUDA Backend / Remove Native Backend inside VS Code: real npm, the real sidecar restarting on the new
// backend. libtensorflow cannot be downloaded here, so the successful install uses a stand-in package with the real
// name (packed with `npm pack`): it registers a 'tensorflow' backend the way tfjs-node does, on tfjs-cpu's kernels.
const assert = require('assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { exec, tempDir } = require('./helpers');

const npmEnv = (dir) => ({
  npm_config_cache: path.join(dir, 'cache'),
  npm_config_userconfig: path.join(dir, 'npmrc'),
  npm_config_fetch_retries: '0',
});

function standInTarball(dir) {
  const pkg = path.join(dir, 'pkg');
  fs.mkdirSync(pkg);
  fs.writeFileSync(
    path.join(pkg, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-node', version: '4.22.0', main: 'index.js', license: 'Apache-2.0' }),
  );
  fs.writeFileSync(
    path.join(pkg, 'index.js'),
    "const tf = require('@tensorflow/tfjs');\n" +
      "for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'tensorflow' });\n" +
      "tf.registerBackend('tensorflow', () => tf.findBackendFactory('cpu')(), 3);\n",
  );
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
    cwd: pkg,
    encoding: 'utf8',
    env: { ...process.env, ...npmEnv(dir) },
  });
  return path.join(dir, name.trim().split('\n').pop());
}

suite('Native backend (ddpm.installCudaBackend / ddpm.removeNativeBackend)', () => {
  test('offline: the install fails with a clear error and the sidecar keeps its backend', async () => {
    const before = await exec('ddpm.info');
    const dir = tempDir('native-offline');
    const r = await exec('ddpm.installCudaBackend', {
      variant: 'cpu',
      env: { ...npmEnv(dir), npm_config_registry: 'http://127.0.0.1:9/' },
    });
    assert.strictEqual(r.ok, false, JSON.stringify(r));
    assert.strictEqual(r.kind, 'offline', JSON.stringify(r));
    assert.match(r.error, /Could not download @tensorflow\/tfjs-node.*Nothing was installed/);
    const after = await exec('ddpm.info');
    assert.strictEqual(after.backend.name, before.backend.name);
  });

  test('a native backend installs, the restarted sidecar uses it, and removing it restores the previous backend', async () => {
    const before = await exec('ddpm.info');
    const dir = tempDir('native-ok');
    const r = await exec('ddpm.installCudaBackend', {
      variant: 'cpu',
      packageSpec: standInTarball(dir),
      env: npmEnv(dir),
    });
    assert.strictEqual(r.ok, true, JSON.stringify(r));
    assert.strictEqual(r.device, 'libtensorflow (CPU)');
    const info = await exec('ddpm.info');
    console.log(`after install: backend ${info.backend.name} (${info.backend.device})`);
    assert.strictEqual(info.backend.name, 'tensorflow');
    // The palette offers Remove Native Backend now (its when clause reads this key), and not after the removal.
    assert.strictEqual((await exec('ddpm._contextKeys'))['ddpm.nativeBackend'], 'cpu');
    assert.strictEqual(await exec('ddpm.removeNativeBackend'), true);
    assert.strictEqual((await exec('ddpm._contextKeys'))['ddpm.nativeBackend'], '');
    const restored = await exec('ddpm.info');
    assert.strictEqual(restored.backend.name, before.backend.name);
  });
});
