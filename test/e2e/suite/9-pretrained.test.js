'use strict';
// DDPM: Download Pretrained Model… in real VS Code, against a Hugging Face Hub look-alike on the loopback address
// (the tree API with sizes and SHA-256, /resolve/ redirecting to a CDN path, Range): the small diffusers fixture
// (test/fixtures/diffusers/small) is downloaded, imported by the sidecar into the global storage, and sampled.
// Then DDPM: Import Diffusers Model… on the fixture folder itself.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const vscode = require('vscode');
const { tempDir, pngInfo, exec } = require('./helpers');

// This file sits in test/e2e/suite/ of the repository also when the extension under test is a packaged .vsix.
const FIXTURE = path.resolve(__dirname, '..', '..', 'fixtures', 'diffusers', 'small');
const REPO = 'test/ddpm-small';

/** The hub look-alike: GET /api/models/REPO/tree/main, /REPO/resolve/main/PATH → 302 /cdn/PATH. */
function startHub() {
  const files = new Map(
    ['config.json', 'diffusion_pytorch_model.safetensors'].map((f) => [f, fs.readFileSync(path.join(FIXTURE, f))]),
  );
  files.set(
    'scheduler_config.json',
    Buffer.from(
      JSON.stringify({ _class_name: 'DDPMScheduler', beta_schedule: 'linear', variance_type: 'fixed_small' }),
    ),
  );
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url);
    const url = new URL(req.url, 'http://x');
    if (url.pathname === `/api/models/${REPO}/tree/main`) {
      const list = [...files].map(([p, b]) => ({
        type: 'file',
        path: p,
        size: b.length,
        ...(p.endsWith('.safetensors')
          ? { oid: '1'.repeat(40), lfs: { oid: crypto.createHash('sha256').update(b).digest('hex'), size: b.length } }
          : { oid: crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex') }),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(list));
    }
    const m = new RegExp(`^/${REPO}/resolve/main/(.+)$`).exec(url.pathname);
    if (m && files.has(m[1])) {
      res.writeHead(302, { location: `/cdn/${m[1]}` });
      return res.end();
    }
    const c = /^\/cdn\/(.+)$/.exec(url.pathname);
    if (c && files.has(c[1])) {
      const b = files.get(c[1]);
      res.writeHead(200, { 'content-length': b.length });
      return res.end(b);
    }
    res.writeHead(404);
    res.end('not found');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${server.address().port}`, requests, close: () => server.close() }),
    ),
  );
}

suite('Pretrained models (DDPM: Download Pretrained Model…, Import Diffusers Model…)', () => {
  let hub;
  suiteSetup(async () => {
    hub = await startHub();
    await vscode.workspace.getConfiguration('ddpm').update('hub.endpoint', hub.url, vscode.ConfigurationTarget.Global);
  });
  suiteTeardown(async () => {
    await vscode.workspace
      .getConfiguration('ddpm')
      .update('hub.endpoint', undefined, vscode.ConfigurationTarget.Global);
    if (hub) hub.close();
  });

  test('downloads the model from the loopback hub, imports it, and samples 16×16 RGB images from it', async () => {
    const t0 = Date.now();
    const r = await exec('ddpm.downloadPretrained', { repo: REPO, force: true });
    console.log(`ddpm.downloadPretrained -> ${JSON.stringify(r)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.ok(r && typeof r === 'object', `result ${JSON.stringify(r)}`);
    assert.strictEqual(r.params, 143267);
    assert.ok(fs.existsSync(r.checkpoint), `${r.checkpoint} was not written`);
    assert.ok(
      hub.requests.some((u) => u.startsWith(`/api/models/${REPO}/tree/main`)) &&
        hub.requests.includes('/cdn/diffusion_pytorch_model.safetensors'),
      `requests: ${hub.requests.join(', ')}`,
    );
    // The download folder is gone once imported; the checkpoint says where it came from.
    const header = JSON.parse(
      fs.readFileSync(r.checkpoint).subarray(8, 8 + Number(fs.readFileSync(r.checkpoint).readBigUInt64LE(0))),
    );
    const meta = JSON.parse(header.__metadata__.ddpm);
    assert.strictEqual(meta.imported.repo, REPO);
    assert.deepStrictEqual(meta.sampling, { varianceType: 'fixedsmall', clip: true });

    const saveTo = path.join(tempDir('pretrained'), 'grid.png');
    const s = await exec('ddpm.sample', { checkpoint: r.checkpoint, n: 2, sampler: 'ddim', steps: 3, seed: 1, saveTo });
    assert.strictEqual(s.images, 2);
    const png = pngInfo(fs.readFileSync(saveTo));
    // Two 16×16 images side by side with 2-pixel borders: 2 + 2·(16 + 2) = 38 wide, 2 + 16 + 2 = 20 high.
    assert.deepStrictEqual({ width: png.width, height: png.height }, { width: 38, height: 20 });

    // Asked again, nothing is downloaded: it is there.
    const before = hub.requests.length;
    const again = await exec('ddpm.downloadPretrained', { repo: REPO });
    assert.strictEqual(again.checkpoint, r.checkpoint);
    assert.strictEqual(again.cached, true);
    assert.strictEqual(hub.requests.length, before);
  });

  test('a repository that is not on the hub fails with a message naming it', async () => {
    await assert.rejects(
      exec('ddpm.downloadPretrained', { repo: 'nobody/nothing' }),
      /cannot list nobody\/nothing .*not found/,
    );
  });

  test('Import Diffusers Model… on the fixture folder writes a checkpoint that inspects as 143,267 parameters', async () => {
    const out = path.join(tempDir('import'), 'small.safetensors');
    const r = await exec('ddpm.importDiffusers', vscode.Uri.file(FIXTURE), out);
    assert.strictEqual(r, out);
    const info = await vscode.commands.executeCommand('ddpm.info');
    assert.ok(info && info.presets.some((p) => p.name === 'celebahq256' && p.params === 113673219));
  });
});
