// The diffusion math against the golden vectors (steps_small.json), and the check-golden command on other shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../../sidecar/backend.ts';
import { checkGolden, FLOAT32_TOL } from '../../scripts/golden.ts';
import { readGolden, goldenPath, repoRoot } from '../helpers/paths.ts';
import { makeGoldenFile } from '../helpers/goldenReference.ts';

const EXPECTED_PER_CASE = [
  'q_sample',
  'q_posterior_mean_true_x0',
  'q_posterior_variance',
  'q_posterior_log_variance_clipped',
  'pred_x0',
  'pred_x0_clipped',
  'model_mean_clipped',
  'model_mean_unclipped',
  'eps_param_mean',
  'fixedlarge.model_variance',
  'fixedlarge.model_log_variance',
  'fixedlarge.p_sample_clipped',
  'fixedlarge.p_sample_unclipped',
  'fixedsmall.model_variance',
  'fixedsmall.model_log_variance',
  'fixedsmall.p_sample_clipped',
  'fixedsmall.p_sample_unclipped',
  'ddim.pred_x0',
  'ddim.eta0_x_prev',
  'ddim.eta0_x_prev_clip_x0',
  'ddim.variance',
  'ddim.eta1_sigma',
  'ddim.eta1_x_prev_mean',
  'ddim.eta1_x_prev_with_z',
  'float32_emulated.q_sample',
  'float32_emulated.pred_x0',
  'float32_emulated.model_mean_clipped',
];

test('every output of steps_small.json is reproduced to float32 tolerance (rtol 1e-5)', async () => {
  await initBackend('auto');
  const results = await checkGolden(readGolden('steps_small.json'));
  const bad = results.filter((r) => !r.ok);
  assert.deepEqual(bad, [], `out of tolerance: ${bad.map((r) => `${r.field} rel ${r.maxRel}`).join('; ')}`);
  for (const c of ['t=[0,999]', 't=[10,500]', 't=[980,20]']) {
    for (const f of EXPECTED_PER_CASE)
      assert.ok(
        results.some((r) => r.field.includes(c) && r.field.endsWith(` ${f}`)),
        `${c} ${f} was not checked`,
      );
  }
  for (const f of ['q_sample_x1', 'q_sample_x2', 'x_t_bar[0.5]', 'x_t_bar[0.25]'])
    assert.ok(
      results.some((r) => r.field.endsWith(f)),
      `${f} not checked`,
    );
  // The file's own float32 check maxima bound the error of a float32 implementation on pred_x0 near t = 999.
  const px0 = results.find((r) => r.field === 'cases[0] t=[0,999] pred_x0');
  assert.ok(px0 && px0.maxRel < 2e-6, `pred_x0 at t=999 rel ${px0?.maxRel}`);
  assert.equal(results.length, 133);
});

test('the checker fails when a golden value is off by more than float32 tolerance', async () => {
  await initBackend('auto');
  const g = readGolden<{ cases: { q_sample: number[][][][] }[] }>('steps_small.json');
  g.cases[1].q_sample[1][2][3][0] *= 1 + 20 * FLOAT32_TOL.rtol;
  const results = await checkGolden(g as unknown as Record<string, unknown>);
  const bad = results.filter((r) => !r.ok).map((r) => r.field);
  assert.ok(bad.includes('cases[1] t=[10,500] q_sample'), `failed fields: ${bad.join(', ')}`);
});

function runCli(file: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'check-golden.ts'), file], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('npm run check-golden handles other shapes ([3,8,8,3]) and timesteps, and exits 1 on a mismatch', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-golden-'));
  try {
    const file = path.join(dir, 'steps_3x8x8x3.json');
    fs.writeFileSync(
      file,
      JSON.stringify(
        makeGoldenFile(
          [3, 8, 8, 3],
          [
            [0, 999, 37],
            [1, 20, 640],
            [998, 5, 19],
          ],
          11,
        ),
      ),
    );
    const ok = runCli(file);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /0 out of tolerance/);
    assert.match(ok.out, /cases\[2\] t=\[998,5,19\] ddim\.eta1_x_prev_with_z/);

    const bad = JSON.parse(fs.readFileSync(file, 'utf8'));
    bad.cases[0].fixedsmall.p_sample_clipped[2][7][7][2] += 1e-3;
    const badFile = path.join(dir, 'bad.json');
    fs.writeFileSync(badFile, JSON.stringify(bad));
    const failed = runCli(badFile);
    assert.equal(failed.code, 1, failed.out);
    assert.match(failed.out, /FAIL .*fixedsmall\.p_sample_clipped/);

    const shipped = runCli(goldenPath('steps_small.json'));
    assert.equal(shipped.code, 0, shipped.out);

    const missing = runCli(path.join(dir, 'nope.json'));
    assert.equal(missing.code, 2);
    assert.match(missing.out, /cannot read golden file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
