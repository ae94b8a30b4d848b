// Schedules against the golden files: every field, every timestep, linear and cosine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  makeSchedule,
  linspace,
  ddimTimesteps,
  SCHEDULE_FIELDS,
  type ScheduleField,
} from '../../sidecar/ddpm/schedule.ts';
import { readGolden } from '../helpers/paths.ts';

// Fields that involve log: libms may differ by an ulp, so these compare with rtol 1e-14 (README of the golden files).
const LOG_FIELDS = new Set([
  'posterior_log_variance_clipped',
  'log_one_minus_alphas_cumprod',
  'fixedlarge_log_variance',
]);

function checkAgainst(file: string, kind: 'linear' | 'cosine', betaRtol: number) {
  const g = readGolden<Record<string, unknown>>(file);
  const s = makeSchedule(
    kind === 'linear'
      ? { kind, T: g.T as number, betaStart: g.beta_start as number, betaEnd: g.beta_end as number }
      : { kind, T: g.T as number },
  );
  let checked = 0;
  for (const field of SCHEDULE_FIELDS) {
    const golden = g[field] as number[] | undefined;
    assert.ok(golden, `golden file has no ${field}`);
    assert.equal(golden.length, 1000);
    const ours = s.f64[field as ScheduleField];
    // Non-log linear fields use only + − × ÷ √ in the original order: they must be bit-identical.
    const rtol = kind === 'cosine' ? betaRtol : LOG_FIELDS.has(field) ? 1e-14 : 0;
    for (let t = 0; t < 1000; t++) {
      const d = Math.abs(ours[t] - golden[t]);
      assert.ok(
        d <= rtol * Math.abs(golden[t]),
        `${file} ${field}[${t}]: ours ${ours[t]} golden ${golden[t]} (rel ${d / Math.abs(golden[t])})`,
      );
    }
    // The float32 copy is the float64 value rounded once.
    for (let t = 0; t < 1000; t++) assert.equal(s.f32[field as ScheduleField][t], Math.fround(ours[t]));
    checked++;
  }
  assert.equal(checked, SCHEDULE_FIELDS.length);
}

test('linear schedule (β 1e-4 → 0.02, T = 1000): every field bit-identical to the golden values (log fields to 1e-14)', () => {
  checkAgainst('schedule_linear_T1000.json', 'linear', 0);
});

test('cosine schedule (s = 0.008, β ≤ 0.999): every field of the golden file to 1e-12', () => {
  // libm cos may differ by an ulp (the golden README notes f(0.732)), which propagates into ᾱ.
  checkAgainst('schedule_cosine_T1000.json', 'cosine', 1e-12);
  const s = makeSchedule({ kind: 'cosine', T: 1000 });
  assert.equal(s.f64.betas[999], 0.999, 'only the last beta reaches the cap');
  assert.ok(s.f64.betas[998] < 0.999);
});

test('posterior variance is exactly 0 at t = 0 and its clipped log uses β̃_1', () => {
  const s = makeSchedule();
  assert.equal(s.f64.posterior_variance[0], 0);
  assert.equal(s.f64.posterior_log_variance_clipped[0], Math.log(s.f64.posterior_variance[1]));
  assert.equal(s.f64.fixedlarge_log_variance[0], Math.log(s.f64.posterior_variance[1]));
  assert.equal(s.f64.fixedlarge_log_variance[5], Math.log(s.f64.betas[5]));
});

test('linspace follows numpy (last entry exactly stop) and other T / β ranges work', () => {
  const l = linspace(1e-4, 0.02, 1000);
  assert.equal(l[999], 0.02);
  assert.equal(l[1], 1e-4 + (0.02 - 1e-4) / 999);
  const s = makeSchedule({ kind: 'linear', T: 50, betaStart: 1e-3, betaEnd: 0.05 });
  assert.equal(s.T, 50);
  assert.equal(s.f64.betas[0], 1e-3);
  assert.equal(s.f64.betas[49], 0.05);
  assert.ok(s.f64.alphas_cumprod[49] < s.f64.alphas_cumprod[0]);
});

test('DDIM "leading" timesteps: 980, 960, …, 0 for 50 steps of T = 1000', () => {
  const ts = ddimTimesteps(1000, 50);
  assert.equal(ts.length, 50);
  assert.equal(ts[0], 980);
  assert.equal(ts[1], 960);
  assert.equal(ts[49], 0);
  assert.deepEqual(
    ts,
    readGolden<{ ddim_schedule: { timesteps: number[] } }>('steps_small.json').ddim_schedule.timesteps,
  );
  assert.deepEqual(ddimTimesteps(1000, 10), [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
  assert.deepEqual(ddimTimesteps(1000, 1000).length, 1000);
  assert.throws(() => ddimTimesteps(1000, 0), /DDIM steps/);
  assert.throws(() => ddimTimesteps(1000, 1001), /DDIM steps/);
});

test('invalid schedule configs are rejected with a clear message', () => {
  assert.throws(() => makeSchedule({ T: 1 }), /T must be an integer/);
  assert.throws(() => makeSchedule({ betaStart: 0.5, betaEnd: 0.1 }), /betaStart ≤ betaEnd/);
  assert.throws(() => makeSchedule({ kind: 'quadratic' as 'linear' }), /unknown schedule kind/);
});
