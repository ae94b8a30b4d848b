// extension/hubDownload.ts against a Hugging Face Hub look-alike on the loopback address (test/helpers/hubServer.ts)
// serving the small diffusers fixture: listing, redirects, progress, cancel, resume with Range, checksum mismatch,
// offline and proxy errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  downloadModel,
  HubError,
  listRepoFiles,
  modelFiles,
  proxyFor,
  type DownloadProgress,
} from '../../extension/hubDownload.ts';
import { loadCheckpoint } from '../../sidecar/checkpoint/checkpoint.ts';
import { readHeader, readTensorF32 } from '../../sidecar/checkpoint/safetensors.ts';
import { readDiffusersModel } from '../../sidecar/interop/diffusersFolder.ts';
import { importDiffusers } from '../../sidecar/jobs/importModel.ts';
import { startHubServer, SMALL_REPO } from '../helpers/hubServer.ts';
import { torchSave } from '../helpers/torchSave.ts';
import { repoRoot } from '../helpers/paths.ts';

const SMALL = path.join(repoRoot, 'test', 'fixtures', 'diffusers', 'small');
const WEIGHTS = 'diffusion_pytorch_model.safetensors';
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-hub-'));
const same = (a: string, b: string) => assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), `${a} ≠ ${b}`);

test('the listing: sizes and checksums (LFS SHA-256, git blob SHA-1); the model files of flat and pipeline repos', async () => {
  const hub = await startHubServer();
  try {
    const files = await listRepoFiles(SMALL_REPO, { endpoint: hub.url });
    const w = files.find((f) => f.path === WEIGHTS)!;
    assert.equal(w.size, fs.statSync(path.join(SMALL, WEIGHTS)).size);
    assert.equal(w.checksum.algorithm, 'sha256');
    assert.equal(files.find((f) => f.path === 'config.json')?.checksum.algorithm, 'git-sha1');
    assert.deepEqual(
      modelFiles(SMALL_REPO, files).map((f) => f.path),
      ['config.json', WEIGHTS, 'scheduler_config.json'],
    );
    const pipe = files.map((f) => ({
      ...f,
      path: f.path === 'scheduler_config.json' ? 'scheduler/x' : `unet/${f.path}`,
    }));
    pipe.push({ ...files[0], path: 'scheduler/scheduler_config.json' });
    assert.deepEqual(
      modelFiles('x', pipe).map((f) => f.path),
      ['unet/config.json', `unet/${WEIGHTS}`, 'scheduler/scheduler_config.json'],
    );
    // A repository with only torch.save's .bin: the .bin is fetched (checked by its LFS SHA-256 as any file);
    // with both, the safetensors; with neither, a clear error.
    const bin = { ...w, path: 'diffusion_pytorch_model.bin' };
    assert.deepEqual(modelFiles('x', [{ ...files[0], path: 'config.json' }, bin]), [
      { ...files[0], path: 'config.json' },
      bin,
    ]);
    assert.deepEqual(
      modelFiles('x', [{ ...files[0], path: 'config.json' }, bin, w]).map((f) => f.path),
      ['config.json', WEIGHTS],
    );
    assert.throws(
      () => modelFiles('x', [{ ...files[0], path: 'config.json' }]),
      /has no diffusion_pytorch_model\.safetensors \(nor diffusion_pytorch_model\.bin\)/,
    );
    await assert.rejects(
      listRepoFiles('nobody/nothing', { endpoint: hub.url }),
      /cannot list nobody\/nothing .*not found/,
    );
    const other = await startHubServer({ lfsSha256Key: true });
    try {
      const listed = await listRepoFiles(SMALL_REPO, { endpoint: other.url });
      assert.deepEqual(listed.find((f) => f.path === WEIGHTS)?.checksum, w.checksum, 'lfs.sha256 read as lfs.oid');
    } finally {
      await other.close();
    }
  } finally {
    await hub.close();
  }
});

test('a download: every file, through the CDN redirect, progress up to the total, then nothing again', async () => {
  const hub = await startHubServer();
  const dir = tmp();
  try {
    const seen: DownloadProgress[] = [];
    await downloadModel(SMALL_REPO, dir, { endpoint: hub.url, onProgress: (p) => seen.push(p) });
    for (const f of ['config.json', WEIGHTS]) same(path.join(dir, f), path.join(SMALL, f));
    assert.ok(fs.existsSync(path.join(dir, 'scheduler_config.json')));
    assert.ok(seen.length >= 3);
    const total = seen[0].total;
    assert.ok(seen.every((p, i) => p.total === total && (i === 0 || p.received >= seen[i - 1].received)));
    assert.equal(seen[seen.length - 1].received, total);
    assert.ok(
      hub.requests.some((r) => r.url.startsWith('/cdn/')),
      'the resolve URL redirects to /cdn/',
    );
    const before = hub.requests.length;
    await downloadModel(SMALL_REPO, dir, { endpoint: hub.url });
    assert.deepEqual(
      hub.requests.slice(before).map((r) => r.url.split('?')[0]),
      [`/api/models/${SMALL_REPO}/tree/main`],
      'a complete download is not fetched again',
    );
  } finally {
    await hub.close();
  }
});

test("a repository with only torch.save's .bin: the .bin is downloaded, checked by its SHA-256, and imports", async () => {
  const bin = torchSave(
    (() => {
      const h = readHeader(path.join(SMALL, WEIGHTS));
      return h.tensors.map((e) => ({ name: e.name, shape: e.shape, data: readTensorF32(h, e) }));
    })(),
  );
  const hub = await startHubServer({ torchBin: bin });
  const dir = tmp();
  try {
    await downloadModel(SMALL_REPO, dir, { endpoint: hub.url });
    assert.ok(fs.readFileSync(path.join(dir, 'diffusion_pytorch_model.bin')).equals(bin));
    assert.equal(fs.existsSync(path.join(dir, WEIGHTS)), false);
    const out = path.join(dir, 'imported.safetensors');
    importDiffusers({ path: dir, out, f16: false, repo: SMALL_REPO });
    const ref = readDiffusersModel(SMALL);
    const got = loadCheckpoint(out).groups.model!;
    for (const [k, v] of ref.weights) assert.deepEqual(got.get(k)?.data, v.data, k);
  } finally {
    await hub.close();
  }
  const bad = await startHubServer({ torchBin: bin, corrupt: 'diffusion_pytorch_model.bin' });
  const dir2 = tmp();
  try {
    await assert.rejects(
      downloadModel(SMALL_REPO, dir2, { endpoint: bad.url }),
      /diffusion_pytorch_model\.bin: its SHA-256 is [0-9a-f]{64}, but the hub lists [0-9a-f]{64}/,
    );
    assert.equal(fs.existsSync(path.join(dir2, 'diffusion_pytorch_model.bin')), false);
  } finally {
    await bad.close();
  }
});

test('cancel keeps the partial file; the next download resumes it with Range and checks the whole file', async () => {
  // 64 KiB per 20 ms: the 606 KB weights take ~0.2 s, time to cancel in the middle.
  const hub = await startHubServer({ chunk: 65536, delayMs: 20 });
  const dir = tmp();
  try {
    const ac = new AbortController();
    const cancelled = downloadModel(SMALL_REPO, dir, {
      endpoint: hub.url,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.file === WEIGHTS && p.received > 200_000) ac.abort();
      },
    });
    await assert.rejects(cancelled, (e: Error) => e.name === 'AbortError');
    const part = path.join(dir, `${WEIGHTS}.part`);
    const partial = fs.statSync(part).size;
    const full = fs.statSync(path.join(SMALL, WEIGHTS)).size;
    assert.ok(partial > 0 && partial < full, `partial ${partial} of ${full}`);
    assert.ok(!fs.existsSync(path.join(dir, WEIGHTS)));

    const seen: DownloadProgress[] = [];
    await downloadModel(SMALL_REPO, dir, { endpoint: hub.url, onProgress: (p) => seen.push(p) });
    const ranged = hub.requests.filter((r) => r.range && r.url.startsWith('/cdn/'));
    assert.equal(ranged.length, 1);
    assert.match(ranged[0].range!, /^bytes=(\d+)-$/);
    assert.ok(Number(/\d+/.exec(ranged[0].range!)![0]) >= partial);
    same(path.join(dir, WEIGHTS), path.join(SMALL, WEIGHTS));
    assert.ok(!fs.existsSync(part));
    // Resumed bytes count as received from the start of the file.
    const firstWeights = seen.find((p) => p.file === WEIGHTS)!;
    assert.ok(firstWeights.received >= partial);
  } finally {
    await hub.close();
  }
});

test('a server that ignores Range sends the whole file again, and the result is still exact', async () => {
  const hub = await startHubServer({ ignoreRange: true });
  const dir = tmp();
  try {
    fs.writeFileSync(path.join(dir, `${WEIGHTS}.part`), fs.readFileSync(path.join(SMALL, WEIGHTS)).subarray(0, 1000));
    await downloadModel(SMALL_REPO, dir, { endpoint: hub.url });
    same(path.join(dir, WEIGHTS), path.join(SMALL, WEIGHTS));
  } finally {
    await hub.close();
  }
});

test('a file whose bytes do not hash to the listed SHA-256 is refused and removed', async () => {
  const hub = await startHubServer({ corrupt: WEIGHTS });
  const dir = tmp();
  try {
    await assert.rejects(
      downloadModel(SMALL_REPO, dir, { endpoint: hub.url }),
      (e: Error) =>
        e instanceof HubError &&
        e.kind === 'checksum' &&
        /diffusion_pytorch_model\.safetensors: its SHA-256 is [0-9a-f]{64}, but the hub lists [0-9a-f]{64}/.test(
          e.message,
        ),
    );
    assert.ok(!fs.existsSync(path.join(dir, WEIGHTS)));
    assert.ok(!fs.existsSync(path.join(dir, `${WEIGHTS}.part`)));
  } finally {
    await hub.close();
  }
});

test('a Xet-backed file: its SHA-256 from the redirect’s x-linked-etag, checked; without one it is refused', async () => {
  const cases: [Parameters<typeof startHubServer>[0], RegExp | null][] = [
    [{ xet: true }, null],
    [{ xet: true, corrupt: WEIGHTS }, /its SHA-256 is [0-9a-f]{64}, but the hub lists/],
    [{ xet: 'no-etag' }, /the hub lists no SHA-256 for it/],
  ];
  for (const [opts, refused] of cases) {
    const hub = await startHubServer(opts);
    const dir = tmp();
    try {
      const listed = (await listRepoFiles(SMALL_REPO, { endpoint: hub.url })).find((f) => f.path === WEIGHTS)!;
      assert.deepEqual(listed.checksum, { algorithm: 'sha256', hex: '' });
      const run = downloadModel(SMALL_REPO, dir, { endpoint: hub.url });
      if (!refused) {
        await run;
        same(path.join(dir, WEIGHTS), path.join(SMALL, WEIGHTS));
      } else {
        await assert.rejects(
          run,
          (e: Error) => e instanceof HubError && e.kind === 'checksum' && refused.test(e.message),
        );
        assert.ok(!fs.existsSync(path.join(dir, WEIGHTS)));
      }
    } finally {
      await hub.close();
    }
  }
});

test('offline, a dead proxy and a live one: errors that say what failed; the proxy carries the requests', async () => {
  // A port nobody listens on: a server started and closed.
  const dead = await startHubServer();
  const deadUrl = dead.url;
  await dead.close();
  await assert.rejects(
    listRepoFiles(SMALL_REPO, { endpoint: deadUrl }),
    (e: Error) =>
      e instanceof HubError &&
      e.kind === 'offline' &&
      /cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/.test(e.message),
  );
  await assert.rejects(
    listRepoFiles(SMALL_REPO, { endpoint: 'http://no-such-host.invalid' }),
    (e: Error) => e instanceof HubError && /cannot resolve no-such-host\.invalid/.test(e.message),
  );
  const hub = await startHubServer();
  await assert.rejects(
    listRepoFiles(SMALL_REPO, { endpoint: hub.url, proxy: deadUrl }),
    (e: Error) =>
      e instanceof HubError && e.kind === 'proxy' && /cannot reach the proxy 127\.0\.0\.1:\d+/.test(e.message),
  );
  // A forward proxy on the loopback address: every request goes through it.
  const proxied: string[] = [];
  const proxy = http.createServer((req, res) => {
    proxied.push(req.url ?? '');
    const target = new URL(req.url ?? '');
    const up = http.request(target, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const dir = tmp();
  try {
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    await downloadModel(SMALL_REPO, dir, { endpoint: hub.url, proxy: proxyUrl });
    same(path.join(dir, WEIGHTS), path.join(SMALL, WEIGHTS));
    assert.ok(proxied.some((u) => u.startsWith(`${hub.url}/api/models/`)));
    assert.ok(proxied.some((u) => u.includes('/cdn/')));
  } finally {
    proxy.close();
    await hub.close();
  }
  // The environment's proxy, and NO_PROXY.
  const u = new URL('https://huggingface.co/x');
  assert.equal(proxyFor(u, undefined, { HTTPS_PROXY: 'http://p:1' }), 'http://p:1');
  assert.equal(proxyFor(u, undefined, { HTTPS_PROXY: 'http://p:1', NO_PROXY: '.huggingface.co' }), undefined);
  assert.equal(proxyFor(u, 'http://q:2', { HTTPS_PROXY: 'http://p:1' }), 'http://q:2');
});
