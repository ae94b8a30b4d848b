// ddpm/import through the real sidecar over JSON-RPC: the small diffusers fixture becomes a checkpoint that samples;
// a config it cannot run, a missing folder and bad params come back with their error codes and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { sidecarSuite } from '../helpers/sidecarSuite.ts';
import { repoRoot } from '../helpers/paths.ts';
import { ErrorCodes, ImportRequest, InspectRequest, SampleRequest } from '../../sidecar/protocol.ts';

const SMALL = path.join(repoRoot, 'test', 'fixtures', 'diffusers', 'small');
const { tmp, sc } = sidecarSuite('ddpm-sidecar-import-');

async function fails(p: Promise<unknown>, code: number, message: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ResponseError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

test('ddpm/import: the fixture becomes a checkpoint; inspect and sample it; the inspector sees the diffusers weights', async () => {
  const out = path.join(tmp, 'small.safetensors');
  const r = await sc.connection.sendRequest(ImportRequest, { path: SMALL, out, repo: 'test/small' });
  assert.equal(r.params, 143_267);
  assert.deepEqual(r.sampling, { varianceType: 'fixedsmall', clip: true });
  assert.deepEqual(r.dtypes, ['F32']);
  const info = await sc.connection.sendRequest(InspectRequest, { path: out });
  assert.equal(info.format, 'ddpm-studio/1');
  assert.equal(info.params, 143_267);
  assert.equal(info.diffusers, undefined);
  const s = await sc.connection.sendRequest(SampleRequest, { checkpoint: out, n: 2, steps: 2, workers: 1 });
  assert.equal(s.images.length, 2);
  assert.equal(s.imageSize, 16);
  assert.equal(s.channels, 3);
  const foreign = await sc.connection.sendRequest(InspectRequest, {
    path: path.join(SMALL, 'diffusion_pytorch_model.safetensors'),
  });
  assert.equal(foreign.format, null);
  assert.equal(foreign.diffusers?.importable, true);
});

test('ddpm/import errors: unsupported config (BadInput, the field), no such folder (NotFound), bad params', async () => {
  const dir = path.join(tmp, 'fourier');
  fs.mkdirSync(dir);
  fs.copyFileSync(
    path.join(SMALL, 'diffusion_pytorch_model.safetensors'),
    path.join(dir, 'diffusion_pytorch_model.safetensors'),
  );
  const cfg = JSON.parse(fs.readFileSync(path.join(SMALL, 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, resnet_time_scale_shift: 'scale_shift' }));
  const out = path.join(tmp, 'never.safetensors');
  await fails(
    sc.connection.sendRequest(ImportRequest, { path: dir, out }),
    ErrorCodes.BadInput,
    /unsupported resnet_time_scale_shift: "scale_shift"/,
  );
  assert.ok(!fs.existsSync(out));
  await fails(
    sc.connection.sendRequest(ImportRequest, { path: path.join(tmp, 'nothing'), out }),
    ErrorCodes.NotFound,
    /diffusers model not found/,
  );
  await fails(sc.connection.sendRequest(ImportRequest, { path: SMALL } as never), ErrorCodes.InvalidParams, /out/);
});
