/**
 * A float64 reference that writes golden files in the steps_small.json format for any shape and timesteps, from
 * the formulas of the golden README (plain loops, no tensors). Used to check that `check-golden` handles shapes and
 * timesteps other than the shipped file's.
 */
import { makeSchedule } from '../../sidecar/ddpm/schedule.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

type Nested = number | Nested[];

function nest(flat: number[], shape: number[]): Nested {
  if (shape.length === 0) return flat[0];
  const [n, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, i) => nest(flat.slice(i * size, (i + 1) * size), rest));
}

export function makeGoldenFile(
  shape: [number, number, number, number],
  cases: number[][],
  seed: number,
  interpT = 500,
): Record<string, unknown> {
  const s = makeSchedule();
  const f = s.f64;
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const per = size / shape[0];
  const r4 = (v: number) => Math.round(v * 1e4) / 1e4;
  const gauss = () => {
    const u = Math.max(rng.uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.uniform());
  };
  const x0 = Array.from({ length: size }, (_, i) => (i === 0 ? 1 : i === 1 ? -1 : r4(rng.uniform() * 2 - 1)));
  const eps = Array.from({ length: size }, () => r4(gauss()));
  const epsTheta = Array.from({ length: size }, () => r4(gauss()));
  const z = Array.from({ length: size }, () => r4(gauss()));
  const x2 = Array.from({ length: size }, () => r4(rng.uniform() * 2 - 1));
  const eps2 = Array.from({ length: size }, () => r4(gauss()));
  const map = (fn: (i: number, b: number) => number) =>
    nest(
      Array.from({ length: size }, (_, i) => fn(i, Math.floor(i / per))),
      shape,
    );
  const clip = (v: number) => Math.min(1, Math.max(-1, v));
  const outCases = cases.map((t) => {
    const xt = (i: number, b: number) =>
      f.sqrt_alphas_cumprod[t[b]] * x0[i] + f.sqrt_one_minus_alphas_cumprod[t[b]] * eps[i];
    const px0 = (i: number, b: number) =>
      f.sqrt_recip_alphas_cumprod[t[b]] * xt(i, b) - f.sqrt_recipm1_alphas_cumprod[t[b]] * epsTheta[i];
    const mean = (i: number, b: number, c: boolean) =>
      f.posterior_mean_coef1[t[b]] * (c ? clip(px0(i, b)) : px0(i, b)) + f.posterior_mean_coef2[t[b]] * xt(i, b);
    const sample = (logvar: Float64Array, c: boolean) =>
      map((i, b) => mean(i, b, c) + (t[b] !== 0 ? Math.exp(0.5 * logvar[t[b]]) * z[i] : 0));
    const tPrev = t.map((ti) => ti - 20);
    const ac = t.map((ti) => f.alphas_cumprod[ti]);
    const acp = tPrev.map((tp) => (tp >= 0 ? f.alphas_cumprod[tp] : 1));
    const variance = ac.map((a, b) => ((1 - acp[b]) / (1 - a)) * (1 - a / acp[b]));
    const dx0 = (i: number, b: number) => (xt(i, b) - Math.sqrt(1 - ac[b]) * epsTheta[i]) / Math.sqrt(ac[b]);
    return {
      t,
      coefficients_at_t: {
        betas: t.map((ti) => f.betas[ti]),
        posterior_variance: t.map((ti) => f.posterior_variance[ti]),
      },
      q_sample: map(xt),
      q_posterior_mean_true_x0: map(
        (i, b) => f.posterior_mean_coef1[t[b]] * x0[i] + f.posterior_mean_coef2[t[b]] * xt(i, b),
      ),
      q_posterior_variance: t.map((ti) => f.posterior_variance[ti]),
      pred_x0: map(px0),
      pred_x0_clipped: map((i, b) => clip(px0(i, b))),
      model_mean_clipped: map((i, b) => mean(i, b, true)),
      model_mean_unclipped: map((i, b) => mean(i, b, false)),
      fixedlarge: {
        model_variance: t.map((ti) => f.betas[ti]),
        p_sample_clipped: sample(f.fixedlarge_log_variance, true),
        p_sample_unclipped: sample(f.fixedlarge_log_variance, false),
      },
      fixedsmall: {
        model_variance: t.map((ti) => f.posterior_variance[ti]),
        p_sample_clipped: sample(f.posterior_log_variance_clipped, true),
        p_sample_unclipped: sample(f.posterior_log_variance_clipped, false),
      },
      ddim: {
        t_prev: tPrev,
        alpha_cumprod_t: ac,
        alpha_cumprod_prev: acp,
        pred_x0: map(dx0),
        eta0_x_prev: map((i, b) => Math.sqrt(acp[b]) * dx0(i, b) + Math.sqrt(1 - acp[b]) * epsTheta[i]),
        eta0_x_prev_clip_x0: map((i, b) => Math.sqrt(acp[b]) * clip(dx0(i, b)) + Math.sqrt(1 - acp[b]) * epsTheta[i]),
        variance,
        eta1_sigma: variance.map(Math.sqrt),
        eta1_x_prev_with_z: map(
          (i, b) =>
            Math.sqrt(acp[b]) * dx0(i, b) +
            Math.sqrt(1 - acp[b] - variance[b]) * epsTheta[i] +
            Math.sqrt(variance[b]) * z[i],
        ),
      },
    };
  });
  const q = (x: number[], e: number[]) => (i: number) =>
    f.sqrt_alphas_cumprod[interpT] * x[i] + f.sqrt_one_minus_alphas_cumprod[interpT] * e[i];
  const q1 = q(x0, eps);
  const q2 = q(x2, eps2);
  return {
    description: 'generated test golden file',
    schedule: { type: 'linear', T: 1000, beta_start: 1e-4, beta_end: 0.02 },
    shape,
    inputs: { x0: nest(x0, shape), eps: nest(eps, shape), eps_theta: nest(epsTheta, shape), z: nest(z, shape) },
    ddim_schedule: { num_inference_steps: 50, step_ratio: 20 },
    cases: outCases,
    interpolation: {
      t: interpT,
      x1: nest(x0, shape),
      x2: nest(x2, shape),
      eps1: nest(eps, shape),
      eps2: nest(eps2, shape),
      q_sample_x1: map((i) => q1(i)),
      q_sample_x2: map((i) => q2(i)),
      x_t_bar: { '0.3': map((i) => 0.7 * q1(i) + 0.3 * q2(i)), '1': map((i) => q2(i)) },
    },
  };
}
