// `ddpm import`, `ddpm export --format diffusers`, `ddpm model --preset celebahq256` (the bundled CLI) and
// `npm run check-import` (scripts/check-import.ts) with its exit codes, on the diffusers fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliIn, pngSize } from '../helpers/cli.ts';
import { repoRoot } from '../helpers/paths.ts';

const SMALL = path.join(repoRoot, 'test', 'fixtures', 'diffusers', 'small');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-diffusers-cli-'));
const ddpm = cliIn(work);

function checkImport(dir: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'check-import.ts'), dir], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, DDPM_WEBGPU_FLAGS: 'backend=d3d12' },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('ddpm model --preset celebahq256 --json: 113,673,219 parameters', () => {
  const r = ddpm('model', '--preset', 'celebahq256', '--json');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout) as { params: number; config: { imageSize: number; chMult: number[] } };
  assert.equal(m.params, 113_673_219);
  assert.equal(m.config.imageSize, 256);
  assert.deepEqual(m.config.chMult, [1, 1, 2, 2, 4, 4]);
});

test('ddpm import → sample → export --format diffusers; the export passes check-import against diffusers outputs', async () => {
  let r = ddpm('import', SMALL, '--out', 'small.safetensors', '--repo', 'test/small', '--json');
  assert.equal(r.code, 0, r.stderr);
  const imp = JSON.parse(r.stdout) as { params: number; sampling: unknown; notes: string[]; attentionNaming: string };
  assert.equal(imp.params, 143_267);
  assert.deepEqual(imp.sampling, { varianceType: 'fixedsmall', clip: true });
  assert.equal(imp.attentionNaming, 'to_q/to_k/to_v/to_out.0');
  assert.match(imp.notes.join('\n'), /no scheduler_config\.json/);

  r = ddpm('inspect', 'small.safetensors', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { params: number }).params, 143_267);

  r = ddpm('sample', '--ckpt', 'small.safetensors', '--n', '2', '--steps', '3', '--out', 's.png', '--workers', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await pngSize(work, 's.png'), [38, 20]); // two 16×16 images, 2-pixel borders
  r = ddpm(
    'sample',
    '--ckpt',
    'small.safetensors',
    '--n',
    '1',
    '--sampler',
    'ddpm',
    '--out',
    'd.png',
    '--workers',
    '1',
  );
  assert.equal(r.code, 0, r.stderr);

  r = ddpm('export', '--ckpt', 'small.safetensors', '--format', 'diffusers', '--out', 'exported');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /wrote exported: .*config\.json/);
  const exported = path.join(work, 'exported');
  assert.deepEqual(fs.readdirSync(exported).sort(), [
    'config.json',
    'diffusion_pytorch_model.safetensors',
    'scheduler_config.json',
  ]);
  const sched = JSON.parse(fs.readFileSync(path.join(exported, 'scheduler_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(sched.variance_type, 'fixed_small');
  assert.equal(sched._class_name, 'DDPMScheduler');
  // The exported folder with the fixture's io.json: our export, read back, gives diffusers' outputs.
  fs.copyFileSync(path.join(SMALL, 'io.json'), path.join(exported, 'io.json'));
  const c = checkImport(exported);
  assert.equal(c.code, 0, c.out + c.err);
  assert.match(c.out, /ok {3}main .*\n.*ok {3}attention_head_dim_8/);
});

test('npm run check-import: 0 on the fixture, 1 when out of tolerance, 2 when unreadable or unsupported', () => {
  const ok = checkImport(SMALL);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /2 case\(s\), 0 out of tolerance/);

  const tight = path.join(work, 'tight');
  fs.mkdirSync(tight);
  for (const f of ['config.json', 'diffusion_pytorch_model.safetensors'])
    fs.copyFileSync(path.join(SMALL, f), path.join(tight, f));
  const io = JSON.parse(fs.readFileSync(path.join(SMALL, 'io.json'), 'utf8')) as { tolerance: { abs: number } };
  io.tolerance.abs = 1e-9;
  fs.writeFileSync(path.join(tight, 'io.json'), JSON.stringify(io));
  const fail = checkImport(tight);
  assert.equal(fail.code, 1, fail.out + fail.err);
  assert.match(fail.out, /FAIL main/);

  const none = checkImport(path.join(work, 'nothing-here'));
  assert.equal(none.code, 2);
  assert.match(none.err, /cannot read .*io\.json/);

  const unsupported = path.join(work, 'unsupported');
  fs.mkdirSync(unsupported);
  for (const f of ['diffusion_pytorch_model.safetensors', 'io.json'])
    fs.copyFileSync(path.join(SMALL, f), path.join(unsupported, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(SMALL, 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(unsupported, 'config.json'), JSON.stringify({ ...cfg, time_embedding_type: 'fourier' }));
  const u = checkImport(unsupported);
  assert.equal(u.code, 2);
  assert.match(u.err, /unsupported time_embedding_type: "fourier"/);
  const r = ddpm('import', unsupported, '--out', 'u.safetensors');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unsupported time_embedding_type: "fourier"/);
  assert.ok(!fs.existsSync(path.join(work, 'u.safetensors')));
});
