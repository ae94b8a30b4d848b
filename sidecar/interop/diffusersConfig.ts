/**
 * Hugging Face diffusers' `UNet2DModel` and `DDPMScheduler` configurations (config.json, scheduler_config.json) ↔
 * our model config (sidecar/ddpm/unet.ts UNetConfig) and noise schedule (sidecar/ddpm/schedule.ts).
 *
 * The published DDPM models (google/ddpm-cifar10-32, -celebahq-256, -church-256, -bedroom-256, -cat-256) are
 * UNet2DModels with exactly the paper's architecture, which is ours: per level N residual blocks (attention after each
 * on the levels whose down block is `AttnDownBlock2D`), a stride-2 downsample but at the last level, a middle
 * res–attention–res, the mirrored up path with N + 1 blocks, positional time embedding. What we cannot run exactly
 * is refused with an error naming the field, never approximated: a wrong model samples noise without saying why.
 * Field defaults are diffusers' own (UNet2DModel.__init__ at the commit in ../shared/golden/diffusers/provenance.json)
 * for keys a config leaves out, since that is what `from_pretrained` would use.
 */
import type { VarianceType } from '../ddpm/diffusion.ts';
import type { ScheduleConfig } from '../ddpm/schedule.ts';
import { validateConfig, type UNetConfig } from '../ddpm/unet.ts';

/** A config that names something we cannot run: `field` is the config key. */
export class UnsupportedConfigError extends Error {
  constructor(
    readonly where: string,
    readonly field: string,
    message: string,
  ) {
    super(`${where}: unsupported ${field}: ${message}`);
    this.name = 'UnsupportedConfigError';
  }
}

/** UNet2DModel's defaults for the keys this importer reads. */
const UNET_DEFAULTS: Readonly<Record<string, unknown>> = {
  sample_size: null,
  in_channels: 3,
  out_channels: 3,
  center_input_sample: false,
  time_embedding_type: 'positional',
  time_embedding_dim: null,
  freq_shift: 0,
  flip_sin_to_cos: true,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'],
  mid_block_type: 'UNetMidBlock2D',
  up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  block_out_channels: [224, 448, 672, 896],
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  downsample_padding: 1,
  downsample_type: 'conv',
  upsample_type: 'conv',
  dropout: 0,
  act_fn: 'silu',
  attention_head_dim: 8,
  norm_num_groups: 32,
  attn_norm_num_groups: null,
  norm_eps: 1e-5,
  resnet_time_scale_shift: 'default',
  add_attention: true,
  class_embed_type: null,
  num_class_embeds: null,
  num_train_timesteps: null,
};

/** The GroupNorm ε our layers use (layers.ts), as the paper's code. */
const OUR_NORM_EPS = 1e-6;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Our model config for a diffusers UNet2DModel config (after `overrides`), or an UnsupportedConfigError. */
export function unetConfigFromDiffusers(raw: unknown, where = 'config.json'): UNetConfig {
  if (!isObject(raw)) throw new UnsupportedConfigError(where, 'config', 'it is not a JSON object');
  const cls = raw._class_name;
  if (cls !== undefined && cls !== 'UNet2DModel')
    throw new UnsupportedConfigError(where, '_class_name', `'${String(cls)}' (only UNet2DModel can be imported)`);
  for (const k of Object.keys(raw))
    if (!k.startsWith('_') && !(k in UNET_DEFAULTS))
      throw new UnsupportedConfigError(
        where,
        k,
        `this importer does not know the field (value ${JSON.stringify(raw[k])})`,
      );
  const get = (k: string): unknown => (k in raw ? raw[k] : UNET_DEFAULTS[k]);
  const fail = (k: string, why: string): never => {
    throw new UnsupportedConfigError(where, k, `${JSON.stringify(get(k))}: ${why}`);
  };
  const int = (k: string, min = 1): number => {
    const v = get(k);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(k, `must be an integer ≥ ${min}`);
    return v as number;
  };
  const expect = (k: string, ok: (v: unknown) => boolean, why: string) => {
    if (!ok(get(k))) fail(k, why);
  };
  const is = (want: unknown) => (v: unknown) => v === want;

  expect('center_input_sample', is(false), 'only false (inputs already in [−1, 1])');
  expect('time_embedding_type', is('positional'), "only 'positional' (the paper's sinusoidal embedding)");
  expect('act_fn', is('silu'), "only 'silu' (swish)");
  expect('mid_block_scale_factor', (v) => v === 1, 'only 1');
  expect(
    'downsample_padding',
    (v) => v === 0,
    'only 0 (pad right/bottom before the stride-2 convolution, as the paper)',
  );
  expect('downsample_type', is('conv'), "only 'conv'");
  expect('upsample_type', is('conv'), "only 'conv'");
  expect('resnet_time_scale_shift', is('default'), "only 'default' (the time embedding is added, not a scale-shift)");
  expect('add_attention', is(true), 'only true (the middle block has attention)');
  expect('mid_block_type', is('UNetMidBlock2D'), "only 'UNetMidBlock2D'");
  expect('class_embed_type', is(null), 'class-conditional diffusers models are not supported');
  expect('num_class_embeds', is(null), 'class-conditional diffusers models are not supported');
  expect('num_train_timesteps', is(null), 'only for learned time embeddings, which are not supported');
  expect('norm_eps', (v) => v === OUR_NORM_EPS, `only ${OUR_NORM_EPS} (the paper's GroupNorm ε)`);
  expect('freq_shift', (v) => typeof v === 'number' && Number.isFinite(v), 'must be a number');
  expect('flip_sin_to_cos', (v) => typeof v === 'boolean', 'must be true or false');
  expect('dropout', (v) => typeof v === 'number' && v >= 0 && v < 1, 'must be a number in [0, 1)');

  const inC = int('in_channels');
  if (inC !== 1 && inC !== 3) fail('in_channels', 'only 1 (grayscale) or 3 (RGB)');
  if (int('out_channels') !== inC) fail('out_channels', `must equal in_channels (${inC}): the model predicts ε`);
  const sampleSize = get('sample_size');
  if (typeof sampleSize !== 'number' || !Number.isInteger(sampleSize) || sampleSize < 1)
    fail('sample_size', 'must be one integer (square images)');

  const boc = get('block_out_channels');
  if (!Array.isArray(boc) || boc.length === 0 || boc.some((c) => !Number.isInteger(c) || c < 1))
    fail('block_out_channels', 'must be a non-empty list of positive integers');
  const channels = boc as number[];
  const ch = channels[0];
  if (channels.some((c) => c % ch !== 0))
    fail('block_out_channels', `every entry must be a multiple of the first (${ch})`);
  const levels = channels.length;
  const down = get('down_block_types');
  const up = get('up_block_types');
  if (!Array.isArray(down) || down.length !== levels)
    fail('down_block_types', `must be a list of ${levels} block types (one per block_out_channels entry)`);
  if (!Array.isArray(up) || up.length !== levels)
    fail('up_block_types', `must be a list of ${levels} block types (one per block_out_channels entry)`);
  const attnLevels: boolean[] = [];
  (down as unknown[]).forEach((t, i) => {
    if (t !== 'DownBlock2D' && t !== 'AttnDownBlock2D')
      throw new UnsupportedConfigError(
        where,
        `down_block_types[${i}]`,
        `${JSON.stringify(t)}: only DownBlock2D and AttnDownBlock2D`,
      );
    attnLevels.push(t === 'AttnDownBlock2D');
  });
  (up as unknown[]).forEach((t, j) => {
    if (t !== 'UpBlock2D' && t !== 'AttnUpBlock2D')
      throw new UnsupportedConfigError(
        where,
        `up_block_types[${j}]`,
        `${JSON.stringify(t)}: only UpBlock2D and AttnUpBlock2D`,
      );
    // up_blocks[j] works at the resolution of down_blocks[levels − 1 − j]; our model has attention at a resolution on
    // both paths or on neither (as the paper).
    if ((t === 'AttnUpBlock2D') !== attnLevels[levels - 1 - j])
      throw new UnsupportedConfigError(
        where,
        `up_block_types[${j}]`,
        `${JSON.stringify(t)} does not mirror down_block_types[${levels - 1 - j}] (${JSON.stringify((down as unknown[])[levels - 1 - j])}): attention must be on both paths of a level or on neither`,
      );
  });
  const groups = int('norm_num_groups');
  const attnGroups = get('attn_norm_num_groups');
  if (attnGroups !== null && attnGroups !== groups)
    fail('attn_norm_num_groups', `only null or norm_num_groups (${groups})`);
  for (const c of channels)
    if (c < groups || c % groups !== 0)
      fail('norm_num_groups', `must divide every block_out_channels entry (${channels.join(', ')})`);
  const temb = get('time_embedding_dim');
  if (temb !== null && temb !== 4 * ch)
    fail('time_embedding_dim', `only null or 4 × block_out_channels[0] (${4 * ch})`);
  const headDim = get('attention_head_dim');
  if (headDim !== null && !(typeof headDim === 'number' && Number.isInteger(headDim) && headDim > 0))
    fail('attention_head_dim', 'must be null (one head) or a positive integer (channels per head)');
  const size = sampleSize as number;
  const config: UNetConfig = {
    imageSize: size,
    channels: inC,
    ch,
    chMult: channels.map((c) => c / ch),
    numResBlocks: int('layers_per_block'),
    attnResolutions: attnLevels.flatMap((a, l) => (a ? [size / 2 ** l] : [])),
    dropout: get('dropout') as number,
    groups,
  };
  if (headDim !== null) config.attnHeadDim = headDim as number;
  // Stored only where they differ from the paper's, so that an imported paper model has the preset's config.
  const shift = get('freq_shift') as number;
  const flip = get('flip_sin_to_cos') as boolean;
  if (shift !== 1) config.timeFreqShift = shift;
  if (flip) config.timeFlipSinToCos = true;
  try {
    return validateConfig(config);
  } catch (e) {
    throw new UnsupportedConfigError(where, 'config', (e as Error).message);
  }
}

/** The diffusers UNet2DModel config of our model config (what `UNet2DModel.from_pretrained` reads). */
export function diffusersConfigFromUnet(c: UNetConfig, diffusersVersion = '0.30.0'): Json {
  const config = validateConfig({ ...c });
  if (config.numClasses)
    throw new UnsupportedConfigError(
      'export',
      'numClasses',
      `${config.numClasses}: class-conditional models cannot be exported to diffusers (its class embedding has no null class)`,
    );
  const channels = config.chMult.map((m) => config.ch * m);
  if (channels.some((ch) => ch < config.groups) || config.ch < config.groups)
    throw new UnsupportedConfigError(
      'export',
      'groups',
      `the model has ${Math.min(config.ch, ...channels)} channels in a block but ${config.groups} GroupNorm groups: diffusers needs groups ≤ channels`,
    );
  const attn = channels.map((_, l) => config.attnResolutions.includes(config.imageSize / 2 ** l));
  const levels = channels.length;
  return {
    _class_name: 'UNet2DModel',
    _diffusers_version: diffusersVersion,
    act_fn: 'silu',
    add_attention: true,
    attention_head_dim: config.attnHeadDim ?? null,
    attn_norm_num_groups: null,
    block_out_channels: channels,
    center_input_sample: false,
    class_embed_type: null,
    down_block_types: attn.map((a) => (a ? 'AttnDownBlock2D' : 'DownBlock2D')),
    downsample_padding: 0,
    downsample_type: 'conv',
    dropout: config.dropout,
    flip_sin_to_cos: config.timeFlipSinToCos ?? false,
    freq_shift: config.timeFreqShift ?? 1,
    in_channels: config.channels,
    layers_per_block: config.numResBlocks,
    mid_block_scale_factor: 1,
    mid_block_type: 'UNetMidBlock2D',
    norm_eps: OUR_NORM_EPS,
    norm_num_groups: config.groups,
    num_class_embeds: null,
    num_train_timesteps: null,
    out_channels: config.channels,
    resnet_time_scale_shift: 'default',
    sample_size: config.imageSize,
    time_embedding_dim: null,
    time_embedding_type: 'positional',
    up_block_types: Array.from({ length: levels }, (_, j) => (attn[levels - 1 - j] ? 'AttnUpBlock2D' : 'UpBlock2D')),
    upsample_type: 'conv',
  };
}

// ---- the scheduler ------------------------------------------------------------------------------------------------

/** How p(x_{t−1}|x_t) is sampled: what DDPMScheduler's variance_type and clip_sample say. */
export interface SamplingConfig {
  varianceType: VarianceType;
  clip: boolean;
}

export interface ImportedSchedule {
  schedule: Required<ScheduleConfig>;
  sampling: SamplingConfig;
  /** Scheduler fields taken as they are or left out, for the user to know (e.g. timestep_spacing: a sampling choice). */
  notes: string[];
}

/** DDPMScheduler's defaults, which are the paper's (linear 1e-4 … 0.02 over T = 1000, σ² = β̃, x̂0 clipped). */
const SCHEDULER_DEFAULTS: Readonly<Json> = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  variance_type: 'fixed_small',
  clip_sample: true,
  clip_sample_range: 1,
  prediction_type: 'epsilon',
  thresholding: false,
  rescale_betas_zero_snr: false,
};

/** Scheduler keys that only choose how a pipeline samples, which our sampler asks for itself. */
const SAMPLING_ONLY_KEYS = new Set([
  'timestep_spacing',
  'steps_offset',
  'set_alpha_to_one',
  'sample_max_value',
  'dynamic_thresholding_ratio',
  'skip_prk_steps',
  'variance_type',
]);

/** The schedule and sampling choices of a diffusers scheduler config (absent: DDPMScheduler's defaults). */
export function scheduleFromDiffusers(raw: unknown, where = 'scheduler_config.json'): ImportedSchedule {
  const notes: string[] = [];
  if (raw === undefined)
    notes.push(`no ${where}: DDPMScheduler's defaults (linear β 1e-4 … 0.02, T = 1000, σ² = β̃, clipped)`);
  const cfg: Json = raw === undefined ? {} : isObject(raw) ? raw : {};
  if (raw !== undefined && !isObject(raw)) throw new UnsupportedConfigError(where, 'config', 'it is not a JSON object');
  const get = (k: string): unknown => (k in cfg ? cfg[k] : SCHEDULER_DEFAULTS[k]);
  const fail = (k: string, why: string): never => {
    throw new UnsupportedConfigError(where, k, `${JSON.stringify(get(k))}: ${why}`);
  };
  const cls = cfg._class_name;
  if (cls !== undefined && typeof cls === 'string' && cls !== 'DDPMScheduler')
    notes.push(`${where} is a ${cls}: its noise schedule is taken, and DDPM Studio's samplers sample it`);
  const T = get('num_train_timesteps');
  if (typeof T !== 'number' || !Number.isInteger(T) || T < 2 || T > 100000)
    fail('num_train_timesteps', 'must be an integer in 2 … 100000');
  if (get('trained_betas') !== null) fail('trained_betas', 'explicit β lists are not supported');
  if (get('prediction_type') !== 'epsilon') fail('prediction_type', "only 'epsilon' (the model predicts the noise)");
  if (get('thresholding') !== false) fail('thresholding', 'dynamic thresholding is not supported');
  if (get('rescale_betas_zero_snr') !== false) fail('rescale_betas_zero_snr', 'only false');
  const clip = get('clip_sample');
  if (typeof clip !== 'boolean') fail('clip_sample', 'must be true or false');
  if (clip && get('clip_sample_range') !== 1) fail('clip_sample_range', 'only 1 (x̂0 clipped to [−1, 1])');
  const variance = get('variance_type');
  let varianceType: VarianceType;
  if (variance === 'fixed_small' || variance === 'fixed_small_log') varianceType = 'fixedsmall';
  else if (variance === 'fixed_large' || variance === 'fixed_large_log') varianceType = 'fixedlarge';
  else return fail('variance_type', 'only fixed_small or fixed_large (learned variances are not supported)');
  const kind = get('beta_schedule');
  let schedule: Required<ScheduleConfig>;
  if (kind === 'linear') {
    const b0 = get('beta_start');
    const b1 = get('beta_end');
    if (typeof b0 !== 'number' || !(b0 > 0 && b0 < 1)) fail('beta_start', 'must be a number in (0, 1)');
    if (typeof b1 !== 'number' || !((b1 as number) >= (b0 as number) && (b1 as number) < 1))
      fail('beta_end', 'must be a number in [beta_start, 1)');
    schedule = {
      kind: 'linear',
      T: T as number,
      betaStart: b0 as number,
      betaEnd: b1 as number,
      cosineS: 0.008,
      maxBeta: 0.999,
    };
  } else if (kind === 'squaredcos_cap_v2') {
    // diffusers' betas_for_alpha_bar with the cosine ᾱ: Nichol & Dhariwal's s = 0.008 and cap 0.999, as ours.
    schedule = { kind: 'cosine', T: T as number, betaStart: 0.0001, betaEnd: 0.02, cosineS: 0.008, maxBeta: 0.999 };
  } else return fail('beta_schedule', "only 'linear' and 'squaredcos_cap_v2'");
  for (const k of Object.keys(cfg)) {
    if (k.startsWith('_') || k in SCHEDULER_DEFAULTS) continue;
    notes.push(
      SAMPLING_ONLY_KEYS.has(k)
        ? `${where}: ${k} = ${JSON.stringify(cfg[k])} is a sampling choice; DDPM Studio's sampler settings apply`
        : `${where}: ${k} = ${JSON.stringify(cfg[k])} is not used`,
    );
  }
  return { schedule, sampling: { varianceType, clip: clip as boolean }, notes };
}

/** DDPMScheduler's config for our schedule and sampling choices (what DDPMPipeline.from_pretrained reads). */
export function diffusersSchedulerConfig(
  schedule: Required<ScheduleConfig>,
  sampling: SamplingConfig,
  diffusersVersion = '0.30.0',
): Json {
  const base = {
    _class_name: 'DDPMScheduler',
    _diffusers_version: diffusersVersion,
    num_train_timesteps: schedule.T,
    trained_betas: null,
    variance_type: sampling.varianceType === 'fixedsmall' ? 'fixed_small' : 'fixed_large',
    clip_sample: sampling.clip,
    clip_sample_range: 1,
    prediction_type: 'epsilon',
    thresholding: false,
    timestep_spacing: 'leading',
    steps_offset: 0,
  };
  if (schedule.kind === 'linear')
    return { ...base, beta_schedule: 'linear', beta_start: schedule.betaStart, beta_end: schedule.betaEnd };
  if (schedule.cosineS !== 0.008 || schedule.maxBeta !== 0.999)
    throw new UnsupportedConfigError(
      'export',
      'schedule',
      `diffusers' cosine schedule has s = 0.008 and β ≤ 0.999; this checkpoint has s = ${schedule.cosineS}, cap ${schedule.maxBeta}`,
    );
  return { ...base, beta_schedule: 'squaredcos_cap_v2', beta_start: 0.0001, beta_end: 0.02 };
}
