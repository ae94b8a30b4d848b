/**
 * Checks the engine against a golden file in the `steps_small.json` format (values computed from the paper
 * authors' original code): every output of every case, each compared with |ours − golden| ≤ atol + rtol·|golden|.
 * Used by `npm run check-golden -- FILE` and by the unit tests.
 */
import * as tf from '@tensorflow/tfjs';
import { GaussianDiffusion } from '../sidecar/ddpm/diffusion.ts';
import { makeSchedule, type ScheduleField } from '../sidecar/ddpm/schedule.ts';

type Nested = number | Nested[];
type Json = { [k: string]: unknown };

export interface FieldResult {
  field: string;
  count: number;
  maxAbs: number;
  /** max |a−b|/|b| over elements with b ≠ 0. */
  maxRel: number;
  /** max |a−b| / (atol + rtol·|b|): ≤ 1 means within tolerance. */
  score: number;
  ok: boolean;
}

export interface Tolerance {
  rtol: number;
  atol: number;
}
/** float32 arithmetic on values of order 1 (the engine's tensors). */
export const FLOAT32_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
/** float64 host arithmetic (schedule coefficients); log/exp may differ by an ulp between libms. */
export const FLOAT64_TOL: Tolerance = { rtol: 1e-12, atol: 1e-15 };

function flatten(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.flatMap((e) => flatten(e));
  throw new Error(`expected numbers, got ${typeof v}`);
}

function shapeOf(v: Nested): number[] {
  return Array.isArray(v) ? [v.length, ...shapeOf(v[0])] : [];
}

/**
 * Extra slack a field may have, beyond atol + rtol·|golden|:
 * - `amplification[b]`: per batch element, how much the computation scales float32 rounding of its inputs. x̂_0
 *   multiplies x_t by √(1/ᾱ_t) (≈ 157 at t = 999) and subtracts a term of the same size, so its absolute error is
 *   atol·√(1/ᾱ_t) however it is computed.
 * - `fileMaxAbs`: the file's own float32-vs-float64 maximum for this field (`_check_max_abs_float32_minus_float64`);
 *   errors up to twice that are float32's, not the implementation's.
 */
export interface Slack {
  amplification?: number[];
  fileMaxAbs?: number;
}

export function compare(
  field: string,
  ours: ArrayLike<number>,
  golden: ArrayLike<number>,
  tol: Tolerance,
  slack: Slack = {},
): FieldResult {
  if (ours.length !== golden.length) throw new Error(`${field}: ${ours.length} values, golden has ${golden.length}`);
  const amp = slack.amplification;
  const perBatch = amp ? golden.length / amp.length : golden.length;
  let maxAbs = 0;
  let maxRel = 0;
  let score = 0;
  for (let i = 0; i < golden.length; i++) {
    const d = Math.abs(ours[i] - golden[i]);
    const g = Math.abs(golden[i]);
    if (!Number.isFinite(ours[i])) score = Infinity;
    maxAbs = Math.max(maxAbs, d);
    if (g > 0) maxRel = Math.max(maxRel, d / g);
    const atol = tol.atol * (amp ? Math.max(1, amp[Math.floor(i / perBatch)]) : 1);
    const allowed = Math.max(atol + tol.rtol * g, 2 * (slack.fileMaxAbs ?? 0));
    score = Math.max(score, d / allowed);
  }
  return { field, count: golden.length, maxAbs, maxRel, score, ok: score <= 1 };
}

const get = (o: unknown, key: string): unknown => (o && typeof o === 'object' ? (o as Json)[key] : undefined);

/** Runs every check the file has data for. The backend must be initialised. */
export async function checkGolden(data: Json): Promise<FieldResult[]> {
  const sched = get(data, 'schedule') as
    { type?: string; T?: number; beta_start?: number; beta_end?: number } | undefined;
  if (!sched || (sched.type !== 'linear' && sched.type !== 'cosine'))
    throw new Error('golden file: missing or unknown "schedule"');
  const schedule = makeSchedule({ kind: sched.type, T: sched.T, betaStart: sched.beta_start, betaEnd: sched.beta_end });
  const diffusion = new GaussianDiffusion(schedule);
  const inputs = get(data, 'inputs') as Record<string, Nested> | undefined;
  if (!inputs) throw new Error('golden file: missing "inputs"');
  const shape = shapeOf(inputs.x0) as [number, number, number, number];
  if (shape.length !== 4) throw new Error(`golden file: inputs.x0 must be NHWC (rank 4), got rank ${shape.length}`);
  const img = (v: unknown) => tf.tensor4d(flatten(v), shape);
  const results: FieldResult[] = [];
  const check = async (
    field: string,
    ours: tf.Tensor | number[] | Float64Array,
    golden: unknown,
    tol = FLOAT32_TOL,
    slack: Slack = {},
  ) => {
    if (golden === undefined) {
      if (ours instanceof tf.Tensor) ours.dispose();
      return;
    }
    const values = ours instanceof tf.Tensor ? await ours.data() : ours;
    if (ours instanceof tf.Tensor) ours.dispose();
    results.push(compare(field, values, flatten(golden), tol, slack));
  };
  const ddimCfg = get(data, 'ddim_schedule') as { step_ratio?: number } | undefined;
  const stepRatio = ddimCfg?.step_ratio ?? Math.floor(schedule.T / 50);

  const x0 = img(inputs.x0);
  const epsTheta = img(inputs.eps_theta);
  const eps = img(inputs.eps);
  const z = img(inputs.z);
  try {
    const cases = (get(data, 'cases') as Json[] | undefined) ?? [];
    for (const [ci, c] of cases.entries()) {
      const t = c.t as number[];
      const tag = `cases[${ci}] t=[${t.join(',')}]`;
      const fileMax = (get(c, '_check_max_abs_float32_minus_float64') ?? {}) as Record<string, number>;
      const x0Slack = (name: string): Slack => ({
        amplification: t.map((ti) => schedule.f64.sqrt_recip_alphas_cumprod[ti]),
        fileMaxAbs: fileMax[name],
      });
      const coefs = (c.coefficients_at_t ?? {}) as Record<string, number[]>;
      for (const [name, values] of Object.entries(coefs)) {
        const f64 = schedule.f64[name as ScheduleField];
        if (!f64) throw new Error(`golden file: unknown schedule field '${name}'`);
        await check(
          `${tag} coefficients_at_t.${name}`,
          t.map((ti) => f64[ti]),
          values,
          FLOAT64_TOL,
        );
      }
      await check(`${tag} q_sample`, diffusion.qSample(x0, t, eps), c.q_sample);
      // Downstream functions take the golden x_t, so that each function is checked on its own.
      const xt = c.q_sample !== undefined ? img(c.q_sample) : diffusion.qSample(x0, t, eps);
      try {
        const post = diffusion.qPosterior(x0, xt, t);
        await check(`${tag} q_posterior_mean_true_x0`, post.mean, c.q_posterior_mean_true_x0);
        await check(`${tag} q_posterior_variance`, post.variance, c.q_posterior_variance);
        await check(`${tag} q_posterior_log_variance_clipped`, post.logVariance, c.q_posterior_log_variance_clipped);
        await check(
          `${tag} pred_x0`,
          diffusion.predictX0FromEps(xt, t, epsTheta, false),
          c.pred_x0,
          FLOAT32_TOL,
          x0Slack('pred_x0'),
        );
        await check(
          `${tag} pred_x0_clipped`,
          diffusion.predictX0FromEps(xt, t, epsTheta, true),
          c.pred_x0_clipped,
          FLOAT32_TOL,
          x0Slack('pred_x0_clipped'),
        );
        const f32 = get(c, 'float32_emulated') as Json | undefined;
        if (f32) {
          await check(`${tag} float32_emulated.q_sample`, diffusion.qSample(x0, t, eps), f32.q_sample);
          await check(
            `${tag} float32_emulated.pred_x0`,
            diffusion.predictX0FromEps(xt, t, epsTheta, false),
            f32.pred_x0,
            FLOAT32_TOL,
            x0Slack('pred_x0'),
          );
          await check(
            `${tag} float32_emulated.pred_x0_clipped`,
            diffusion.predictX0FromEps(xt, t, epsTheta, true),
            f32.pred_x0_clipped,
            FLOAT32_TOL,
            x0Slack('pred_x0_clipped'),
          );
        }
        for (const clip of [true, false]) {
          const mv = diffusion.pMeanVariance(xt, t, epsTheta, { varianceType: 'fixedlarge', clip });
          const suffix = clip ? 'clipped' : 'unclipped';
          const meanValues = await mv.mean.data();
          await check(`${tag} model_mean_${suffix}`, Array.from(meanValues), c[`model_mean_${suffix}`]);
          if (!clip) await check(`${tag} eps_param_mean`, Array.from(meanValues), c.eps_param_mean);
          if (f32)
            await check(
              `${tag} float32_emulated.model_mean_${suffix}`,
              Array.from(meanValues),
              f32[`model_mean_${suffix}`],
            );
          tf.dispose([mv.mean, mv.variance, mv.logVariance, mv.predX0]);
        }
        for (const vt of ['fixedlarge', 'fixedsmall'] as const) {
          const g = get(c, vt) as Json | undefined;
          if (!g) continue;
          const { variance, logVariance } = diffusion.modelVariance(t, vt);
          await check(`${tag} ${vt}.model_variance`, variance, g.model_variance);
          await check(`${tag} ${vt}.model_log_variance`, logVariance, g.model_log_variance);
          for (const clip of [true, false]) {
            const r = diffusion.pSampleStep(xt, t, epsTheta, z, { varianceType: vt, clip });
            r.predX0.dispose();
            await check(
              `${tag} ${vt}.p_sample_${clip ? 'clipped' : 'unclipped'}`,
              r.xPrev,
              g[`p_sample_${clip ? 'clipped' : 'unclipped'}`],
            );
          }
        }
        const d = get(c, 'ddim') as Json | undefined;
        if (d) {
          const tPrev = (d.t_prev as number[] | undefined) ?? t.map((ti) => ti - stepRatio);
          // The golden t_prev may be below −1 (t < step ratio): any negative t_prev means "to x_0", ᾱ_prev = 1.
          const tp = tPrev.map((v) => (v < 0 ? -1 : v));
          const coef = diffusion.ddimCoefficients(t, tp, 1);
          await check(`${tag} ddim.alpha_cumprod_t`, coef.alphaCumprod, d.alpha_cumprod_t, FLOAT64_TOL);
          await check(`${tag} ddim.alpha_cumprod_prev`, coef.alphaCumprodPrev, d.alpha_cumprod_prev, FLOAT64_TOL);
          await check(`${tag} ddim.variance`, coef.variance, d.variance, FLOAT64_TOL);
          await check(`${tag} ddim.eta1_sigma`, coef.sigma, d.eta1_sigma, FLOAT64_TOL);
          const step = async (
            eta: number,
            clip: boolean,
            noise: tf.Tensor4D | null,
            field: string,
            predField?: string,
          ) => {
            const r = diffusion.ddimStep(xt, t, tp, epsTheta, noise, { eta, clip });
            if (predField)
              await check(`${tag} ddim.${predField}`, r.predX0, d[predField], FLOAT32_TOL, x0Slack('pred_x0'));
            else r.predX0.dispose();
            await check(`${tag} ddim.${field}`, r.xPrev, d[field]);
          };
          await step(0, false, null, 'eta0_x_prev', 'pred_x0');
          await step(0, true, null, 'eta0_x_prev_clip_x0');
          const zeros = tf.zerosLike(z);
          await step(1, false, zeros, 'eta1_x_prev_mean');
          zeros.dispose();
          await step(1, false, z, 'eta1_x_prev_with_z');
        }
      } finally {
        xt.dispose();
      }
    }

    const interp = get(data, 'interpolation') as Json | undefined;
    if (interp) {
      const t = interp.t as number;
      const x1 = img(interp.x1);
      const x2 = img(interp.x2);
      const e1 = img(interp.eps1);
      const e2 = img(interp.eps2);
      const tb = new Array<number>(shape[0]).fill(t);
      try {
        await check(`interpolation t=${t} q_sample_x1`, diffusion.qSample(x1, tb, e1), interp.q_sample_x1);
        await check(`interpolation t=${t} q_sample_x2`, diffusion.qSample(x2, tb, e2), interp.q_sample_x2);
        for (const [lam, values] of Object.entries((interp.x_t_bar ?? {}) as Record<string, unknown>)) {
          await check(
            `interpolation t=${t} x_t_bar[${lam}]`,
            diffusion.interpolateLatents(x1, x2, t, e1, e2, Number(lam)),
            values,
          );
        }
      } finally {
        tf.dispose([x1, x2, e1, e2]);
      }
    }
  } finally {
    tf.dispose([x0, epsTheta, eps, z]);
  }
  if (results.length === 0) throw new Error('golden file: nothing to check (no cases, no interpolation)');
  return results;
}

export function formatResults(results: FieldResult[]): string {
  const rows = results.map((r) => [
    r.ok ? 'ok  ' : 'FAIL',
    r.field,
    String(r.count),
    r.maxAbs.toExponential(2),
    r.maxRel.toExponential(2),
    r.score.toFixed(3),
  ]);
  const header = ['', 'field', 'n', 'max abs err', 'max rel err', 'err/tol'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
