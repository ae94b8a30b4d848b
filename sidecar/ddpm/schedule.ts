/**
 * Noise schedules β_1..β_T and every coefficient derived from them (Ho et al. 2020, §2 and eqs. 4, 6, 7).
 *
 * Everything here is float64 and follows the original code's formulas and operation order, so that the values
 * match the authors' numbers bit for bit where no log/exp is involved. Tensors never see these float64 arrays:
 * `float32` holds each field cast once, and the diffusion code uploads the few entries a step needs.
 * Timesteps are 0-based (t = 0 … T−1), as in the original code.
 */

export type ScheduleKind = 'linear' | 'cosine';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Number of diffusion steps T. */
  T: number;
  /** Linear schedule only: β at t = 0 and t = T−1. */
  betaStart?: number;
  betaEnd?: number;
  /** Cosine schedule only: the offset s (improved DDPM uses 0.008) and the cap on β (0.999). */
  cosineS?: number;
  maxBeta?: number;
}

export const DEFAULT_SCHEDULE: Readonly<Required<Pick<ScheduleConfig, 'kind' | 'T' | 'betaStart' | 'betaEnd'>>> = {
  kind: 'linear',
  T: 1000,
  betaStart: 1e-4,
  betaEnd: 0.02,
};

/** The names of the per-timestep fields; the same names (snake_case) as the original code and the golden files. */
export const SCHEDULE_FIELDS = [
  'betas',
  'alphas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
  'fixedlarge_log_variance',
] as const;
export type ScheduleField = (typeof SCHEDULE_FIELDS)[number];

export interface Schedule {
  readonly config: Required<ScheduleConfig>;
  readonly T: number;
  /** float64 values, indexed by 0-based t. */
  readonly f64: Readonly<Record<ScheduleField, Float64Array>>;
  /** The same values cast once to float32. */
  readonly f32: Readonly<Record<ScheduleField, Float32Array>>;
}

/** numpy.linspace semantics: start + i·step, with the last entry set to exactly `stop`. */
export function linspace(start: number, stop: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  out[n - 1] = stop;
  return out;
}

export function linearBetas(T: number, betaStart: number, betaEnd: number): Float64Array {
  return linspace(betaStart, betaEnd, T);
}

/**
 * Cosine schedule (Nichol & Dhariwal 2021, eq. 17): ᾱ(u) = f(u)/f(0), f(u) = cos²(((u + s)/(1 + s))·π/2),
 * β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), maxBeta). The cap keeps β < 1 near t = T where ᾱ → 0.
 */
export function cosineBetas(T: number, s = 0.008, maxBeta = 0.999): Float64Array {
  const f = (u: number): number => {
    const c = Math.cos((((u + s) / (1 + s)) * Math.PI) / 2);
    return c * c;
  };
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) betas[i] = Math.min(1 - f((i + 1) / T) / f(i / T), maxBeta);
  return betas;
}

function resolveConfig(config: Partial<ScheduleConfig>): Required<ScheduleConfig> {
  const kind = config.kind ?? 'linear';
  if (kind !== 'linear' && kind !== 'cosine')
    throw new Error(`unknown schedule kind '${String(kind)}' (linear or cosine)`);
  const T = config.T ?? DEFAULT_SCHEDULE.T;
  if (!Number.isInteger(T) || T < 2) throw new Error(`schedule T must be an integer ≥ 2, got ${T}`);
  const betaStart = config.betaStart ?? DEFAULT_SCHEDULE.betaStart;
  const betaEnd = config.betaEnd ?? DEFAULT_SCHEDULE.betaEnd;
  if (!(betaStart > 0 && betaEnd < 1 && betaStart <= betaEnd)) {
    throw new Error(`linear schedule needs 0 < betaStart ≤ betaEnd < 1, got ${betaStart} → ${betaEnd}`);
  }
  return { kind, T, betaStart, betaEnd, cosineS: config.cosineS ?? 0.008, maxBeta: config.maxBeta ?? 0.999 };
}

export function makeSchedule(config: Partial<ScheduleConfig> = {}): Schedule {
  const cfg = resolveConfig(config);
  const betas =
    cfg.kind === 'linear'
      ? linearBetas(cfg.T, cfg.betaStart, cfg.betaEnd)
      : cosineBetas(cfg.T, cfg.cosineS, cfg.maxBeta);
  return scheduleFromBetas(betas, cfg);
}

/** Derives every coefficient from β with the original code's formulas (GaussianDiffusion2.__init__). */
export function scheduleFromBetas(betas: Float64Array, config: Required<ScheduleConfig>): Schedule {
  const T = betas.length;
  const field = (): Float64Array => new Float64Array(T);
  const f64 = Object.fromEntries(SCHEDULE_FIELDS.map((k) => [k, field()])) as Record<ScheduleField, Float64Array>;
  f64.betas.set(betas);
  let cum = 1;
  for (let t = 0; t < T; t++) {
    const beta = betas[t];
    const alpha = 1 - beta;
    const acPrev = cum;
    cum = cum * alpha; // ᾱ_t = Π_{s≤t} α_s, a sequential running product like numpy.cumprod
    f64.alphas[t] = alpha;
    f64.alphas_cumprod[t] = cum;
    f64.alphas_cumprod_prev[t] = acPrev;
    f64.sqrt_alphas_cumprod[t] = Math.sqrt(cum);
    f64.sqrt_one_minus_alphas_cumprod[t] = Math.sqrt(1 - cum);
    f64.log_one_minus_alphas_cumprod[t] = Math.log(1 - cum);
    f64.sqrt_recip_alphas_cumprod[t] = Math.sqrt(1 / cum);
    f64.sqrt_recipm1_alphas_cumprod[t] = Math.sqrt(1 / cum - 1);
    // β̃_t (eq. 7): the variance of q(x_{t−1} | x_t, x_0); exactly 0 at t = 0.
    f64.posterior_variance[t] = (beta * (1 - acPrev)) / (1 - cum);
    // μ̃_t = coef1·x_0 + coef2·x_t (eq. 7).
    f64.posterior_mean_coef1[t] = (beta * Math.sqrt(acPrev)) / (1 - cum);
    f64.posterior_mean_coef2[t] = ((1 - acPrev) * Math.sqrt(alpha)) / (1 - cum);
  }
  // log β̃ with β̃_0 = 0 replaced by β̃_1: the original code's clipping, so log never sees 0.
  for (let t = 0; t < T; t++) {
    const pv = t === 0 ? f64.posterior_variance[1] : f64.posterior_variance[t];
    f64.posterior_log_variance_clipped[t] = Math.log(pv);
    // σ² = β_t ("fixedlarge") uses β̃_1 at t = 0 for its log, as the original p_mean_variance does.
    f64.fixedlarge_log_variance[t] = Math.log(t === 0 ? f64.posterior_variance[1] : betas[t]);
  }
  const f32 = Object.fromEntries(SCHEDULE_FIELDS.map((k) => [k, Float32Array.from(f64[k])])) as Record<
    ScheduleField,
    Float32Array
  >;
  return { config, T, f64, f32 };
}

/**
 * How DDIM picks its sub-sequence of timesteps (the names diffusers uses; Lin et al. 2024, Table 2):
 * - leading: k·⌊T/steps⌋ for k = steps−1 … 0 (DDIM's "uniform"): 50 of 1000 give 980, …, 20, 0. It never reaches
 *   T−1, and past steps > T/2 the ratio is 1, so sampling starts at t = steps−1, far from pure noise;
 * - trailing: round(T − k·T/steps) − 1 for k = 0 … steps−1: 999, 979, …, 19; always starts at T−1;
 * - linspace: round of steps evenly spaced values from T−1 down to 0 (T−1 alone for one step).
 */
export const DDIM_SPACINGS = ['trailing', 'linspace', 'leading'] as const;
export type DdimSpacing = (typeof DDIM_SPACINGS)[number];

/** DDIM timestep sub-sequence (Song et al. 2021, §4.2), in sampling order (strictly descending). */
export function ddimTimesteps(T: number, steps: number, spacing: DdimSpacing = 'leading'): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > T)
    throw new Error(`DDIM steps must be an integer in 1..${T}, got ${steps}`);
  const out: number[] = [];
  if (spacing === 'leading') {
    const ratio = Math.floor(T / steps);
    for (let k = steps - 1; k >= 0; k--) out.push(k * ratio);
  } else if (spacing === 'trailing') {
    for (let k = 0; k < steps; k++) out.push(Math.round(T - (k * T) / steps) - 1);
  } else if (spacing === 'linspace') {
    if (steps === 1) return [T - 1];
    for (let k = 0; k < steps; k++) out.push(Math.round(((T - 1) * (steps - 1 - k)) / (steps - 1)));
  } else throw new Error(`unknown DDIM spacing '${String(spacing)}' (${DDIM_SPACINGS.join(', ')})`);
  return out;
}
