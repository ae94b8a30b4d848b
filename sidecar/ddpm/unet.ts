/**
 * The ε_θ(x_t, t) network: the U-Net of Ho et al. 2020 (Appendix B), configurable like the paper's models.
 *
 * Structure (resolution r halves at each level, `numResBlocks` = N):
 *   time embedding: sinusoidal(t, ch) → dense 4ch → swish → dense 4ch
 *   conv_in 3×3 → for each level: N residual blocks (+ attention where r ∈ attnResolutions), then a stride-2
 *   downsample except at the last level → middle: res, attention, res → for each level in reverse: N+1 residual
 *   blocks, each on the concatenation with the matching down-path activation (+ attention), then nearest ×2 +
 *   conv3×3 except at the top level → GN → swish → conv_out 3×3 (zero-initialised).
 *
 * Parameter names are hierarchical, dot-separated, and stable (checkpoints store them as is):
 *   time_embed.dense_0.{weight,bias}, time_embed.dense_1.{weight,bias}
 *   conv_in.{weight,bias}
 *   down.<level>.res.<i>.{norm1,norm2}.{gamma,beta} | .{conv1,conv2,temb_proj,skip}.{weight,bias}
 *   down.<level>.attn.<i>.norm.{gamma,beta} | .{q,k,v,proj_out}.{weight,bias}
 *   down.<level>.downsample.conv.{weight,bias}
 *   mid.res_0.*, mid.attn.*, mid.res_1.*
 *   up.<level>.res.<i>.*, up.<level>.attn.<i>.*, up.<level>.upsample.conv.{weight,bias}
 *   norm_out.{gamma,beta}, conv_out.{weight,bias}
 * Shapes: conv weights [kh, kw, in, out] (tfjs HWIO), dense / 1×1 weights [in, out], biases [out].
 */
import * as tf from '@tensorflow/tfjs';
import {
  attnBlock,
  conv2d,
  downsample,
  groupNorm,
  groupsFor,
  resBlock,
  swish,
  timestepEmbedding,
  upsample,
  dense,
  type BlockContext,
  type DropoutFn,
} from './layers.ts';
import type { Rng } from './rng.ts';

export interface UNetConfig {
  /** Height = width of the images. Must be divisible by 2^(levels−1). */
  imageSize: number;
  /** Image channels in and out: 1 (grayscale) or 3 (RGB). */
  channels: number;
  /** Base channel count `ch`. */
  ch: number;
  /** Channel multiplier per level; its length is the number of levels. */
  chMult: number[];
  /** Residual blocks per level on the way down (N + 1 on the way up). */
  numResBlocks: number;
  /** Resolutions at which self-attention is applied (the paper: 16). */
  attnResolutions: number[];
  dropout: number;
  /** GroupNorm groups (32 in the paper; min(groups, C) is used per layer). */
  groups: number;
  /**
   * Class-conditional (Ho & Salimans 2022, classifier-free guidance): the number of classes. A learned embedding of
   * the class, with one more row for "no class", is added to the time embedding. Absent or 0: unconditional.
   */
  numClasses?: number;
  /**
   * Channels per attention head; absent: one head per attention block (the paper). Models trained elsewhere (diffusers'
   * `attention_head_dim`) may use several heads; it must divide the channels of every attention block.
   */
  attnHeadDim?: number;
  /**
   * The sinusoidal time embedding's variant (layers.ts timestepEmbedding): the frequency shift (the paper: 1) and
   * whether cos comes before sin (the paper: no). For imported models that used other values.
   */
  timeFreqShift?: number;
  timeFlipSinToCos?: boolean;
}

/** The label of "no class" (the null class of classifier-free guidance), for any conditional model. */
export const NULL_CLASS = -1;

export const PRESET_NAMES = ['cifar10', 'celebahq256', 'mnist', 'tiny'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PRESETS: Readonly<Record<PresetName, Readonly<UNetConfig>>> = {
  /** The paper's CIFAR-10 model: 35,746,307 parameters. */
  cifar10: {
    imageSize: 32,
    channels: 3,
    ch: 128,
    chMult: [1, 2, 2, 2],
    numResBlocks: 2,
    attnResolutions: [16],
    dropout: 0.1,
    groups: 32,
  },
  /**
   * The paper's 256×256 model (CelebA-HQ, LSUN church, bedroom, cat; Appendix B): six levels 256 → 8, channels
   * 128, 128, 256, 256, 512, 512, attention at 16×16, no dropout: 113,673,219 parameters. Its weights come from the
   * published checkpoints (`ddpm import`, google/ddpm-celebahq-256 and the LSUN models); training one on a CPU is
   * not practical.
   */
  celebahq256: {
    imageSize: 256,
    channels: 3,
    ch: 128,
    chMult: [1, 1, 2, 2, 4, 4],
    numResBlocks: 2,
    attnResolutions: [16],
    dropout: 0,
    groups: 32,
  },
  /**
   * MNIST at its native 28×28 (28 → 14 → 7), 1,062,497 parameters: one residual block per level and attention only
   * in the middle (7×7), so that it trains on a laptop CPU in about an hour (~1 s per step of 16 on wasm).
   */
  mnist: {
    imageSize: 28,
    channels: 1,
    ch: 32,
    chMult: [1, 2, 2],
    numResBlocks: 1,
    attnResolutions: [],
    dropout: 0,
    groups: 32,
  },
  /** A very small model for tests and smoke runs. */
  tiny: {
    imageSize: 16,
    channels: 1,
    ch: 16,
    chMult: [1, 2],
    numResBlocks: 1,
    attnResolutions: [8],
    dropout: 0,
    groups: 8,
  },
};

export function presetConfig(name: string, overrides: Partial<UNetConfig> = {}): UNetConfig {
  if (!(PRESET_NAMES as readonly string[]).includes(name))
    throw new Error(`unknown preset '${name}': choose one of ${PRESET_NAMES.join(', ')}`);
  const base = PRESETS[name as PresetName];
  return validateConfig({
    ...base,
    chMult: [...base.chMult],
    attnResolutions: [...base.attnResolutions],
    ...overrides,
  });
}

export function validateConfig(c: UNetConfig): UNetConfig {
  const positiveInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`model config: ${what} must be a positive integer, got ${v}`);
  };
  positiveInt(c.imageSize, 'imageSize');
  positiveInt(c.ch, 'ch');
  positiveInt(c.numResBlocks, 'numResBlocks');
  positiveInt(c.groups, 'groups');
  if (c.channels !== 1 && c.channels !== 3) throw new Error(`model config: channels must be 1 or 3, got ${c.channels}`);
  if (!Array.isArray(c.chMult) || c.chMult.length === 0)
    throw new Error('model config: chMult must be a non-empty list');
  c.chMult.forEach((m) => positiveInt(m, 'every chMult entry'));
  if (c.ch % 2 !== 0) throw new Error(`model config: ch must be even (sinusoidal embedding), got ${c.ch}`);
  const factor = 2 ** (c.chMult.length - 1);
  if (c.imageSize % factor !== 0) {
    throw new Error(
      `model config: image size ${c.imageSize} is not divisible by 2^(levels−1) = ${factor} for ${c.chMult.length} levels`,
    );
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new Error(`model config: dropout must be in [0, 1), got ${c.dropout}`);
  if (c.numClasses !== undefined && !(Number.isInteger(c.numClasses) && c.numClasses >= 0 && c.numClasses <= 10000))
    throw new Error(`model config: numClasses must be an integer in 0..10000, got ${c.numClasses}`);
  for (const m of [1, ...c.chMult]) groupsFor(c.ch * m, c.groups);
  if (c.attnHeadDim !== undefined) {
    positiveInt(c.attnHeadDim, 'attnHeadDim');
    const attnChannels = [c.ch * c.chMult[c.chMult.length - 1]];
    c.chMult.forEach((m, l) => {
      if (c.attnResolutions.includes(c.imageSize / 2 ** l)) attnChannels.push(c.ch * m);
    });
    for (const ac of attnChannels)
      if (ac % c.attnHeadDim !== 0)
        throw new Error(
          `model config: attnHeadDim ${c.attnHeadDim} does not divide the ${ac} channels of an attention block`,
        );
  }
  if (c.timeFreqShift !== undefined && !(Number.isFinite(c.timeFreqShift) && c.timeFreqShift < c.ch / 2))
    throw new Error(`model config: timeFreqShift must be a number below ch/2, got ${c.timeFreqShift}`);
  if (c.timeFlipSinToCos !== undefined && typeof c.timeFlipSinToCos !== 'boolean')
    throw new Error('model config: timeFlipSinToCos must be true or false');
  return c;
}

export type ParamInit = 'fanavg' | 'zeros' | 'ones';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
}

/** The list of parameters (names, shapes, initialisers) of a configuration, without allocating anything. */
export function paramSpecs(config: UNetConfig): ParamSpec[] {
  const c = validateConfig(config);
  const specs: ParamSpec[] = [];
  const tch = 4 * c.ch;
  const add = (name: string, shape: number[], init: ParamInit) => specs.push({ name, shape, init });
  const convP = (prefix: string, k: number, cin: number, cout: number, zero = false) => {
    add(`${prefix}.weight`, [k, k, cin, cout], zero ? 'zeros' : 'fanavg');
    add(`${prefix}.bias`, [cout], 'zeros');
  };
  const denseP = (prefix: string, cin: number, cout: number, zero = false) => {
    add(`${prefix}.weight`, [cin, cout], zero ? 'zeros' : 'fanavg');
    add(`${prefix}.bias`, [cout], 'zeros');
  };
  const normP = (prefix: string, ch: number) => {
    add(`${prefix}.gamma`, [ch], 'ones');
    add(`${prefix}.beta`, [ch], 'zeros');
  };
  const resP = (prefix: string, cin: number, cout: number) => {
    normP(`${prefix}.norm1`, cin);
    convP(`${prefix}.conv1`, 3, cin, cout);
    denseP(`${prefix}.temb_proj`, tch, cout);
    normP(`${prefix}.norm2`, cout);
    convP(`${prefix}.conv2`, 3, cout, cout, true);
    if (cin !== cout) denseP(`${prefix}.skip`, cin, cout);
  };
  const attnP = (prefix: string, ch: number) => {
    normP(`${prefix}.norm`, ch);
    for (const n of ['q', 'k', 'v']) denseP(`${prefix}.${n}`, ch, ch);
    denseP(`${prefix}.proj_out`, ch, ch, true);
  };

  denseP('time_embed.dense_0', c.ch, tch);
  denseP('time_embed.dense_1', tch, tch);
  // Zero-initialised: a new conditional model starts as the unconditional one and learns what each class adds.
  if (c.numClasses) add('class_embed.weight', [c.numClasses + 1, tch], 'zeros');
  convP('conv_in', 3, c.channels, c.ch);
  const skips = [c.ch];
  let cur = c.ch;
  let res = c.imageSize;
  const levels = c.chMult.length;
  for (let l = 0; l < levels; l++) {
    const cout = c.ch * c.chMult[l];
    for (let i = 0; i < c.numResBlocks; i++) {
      resP(`down.${l}.res.${i}`, cur, cout);
      cur = cout;
      if (c.attnResolutions.includes(res)) attnP(`down.${l}.attn.${i}`, cur);
      skips.push(cur);
    }
    if (l !== levels - 1) {
      convP(`down.${l}.downsample.conv`, 3, cur, cur);
      skips.push(cur);
      res /= 2;
    }
  }
  resP('mid.res_0', cur, cur);
  attnP('mid.attn', cur);
  resP('mid.res_1', cur, cur);
  for (let l = levels - 1; l >= 0; l--) {
    const cout = c.ch * c.chMult[l];
    for (let i = 0; i < c.numResBlocks + 1; i++) {
      const skip = skips.pop();
      if (skip === undefined) throw new Error('internal: skip stack underflow');
      resP(`up.${l}.res.${i}`, cur + skip, cout);
      cur = cout;
      if (c.attnResolutions.includes(res)) attnP(`up.${l}.attn.${i}`, cur);
    }
    if (l !== 0) {
      convP(`up.${l}.upsample.conv`, 3, cur, cur);
      res *= 2;
    }
  }
  normP('norm_out', cur);
  convP('conv_out', 3, cur, c.channels, true);
  return specs;
}

export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Fresh parameters: weights from the original code's initialiser, variance scaling with scale 1, fan_avg,
 * uniform (= Glorot uniform; fan = k·k·channels for convolutions); biases 0, GroupNorm γ = 1, β = 0; the last
 * conv of each residual block, the attention output projection and conv_out start at 0 (the original uses
 * scale 1e-10), so that every block starts as the identity.
 */
export function initParams(specs: readonly ParamSpec[], rng: Rng): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const s of specs) {
    const init = tf.tidy(() => {
      if (s.init === 'zeros') return tf.zeros(s.shape);
      if (s.init === 'ones') return tf.ones(s.shape);
      const receptive = s.shape.length === 4 ? s.shape[0] * s.shape[1] : 1;
      const fanIn = receptive * s.shape[s.shape.length - 2];
      const fanOut = receptive * s.shape[s.shape.length - 1];
      const limit = Math.sqrt(3 / ((fanIn + fanOut) / 2));
      return tf.randomUniform(s.shape, -limit, limit, 'float32', rng.seed());
    });
    // Unnamed: tfjs variable names are global to the process, and several models (or an EMA copy) may coexist.
    out.set(s.name, tf.variable(init, true));
    init.dispose();
  }
  return out;
}

export interface ForwardOptions {
  training: boolean;
  /** Needed when training with dropout > 0: supplies one seed per dropout mask. */
  nextSeed?: () => number;
  /** How dropout is computed (default: layers.ts's host-drawn masks; the backend layer may pass its own). */
  dropout?: DropoutFn;
  /** A conditional model's class per image (NULL_CLASS for none; all none if absent). */
  labels?: readonly number[];
}

/**
 * The rows of the class embedding for `labels` (NULL_CLASS → the last row), checked against the model's classes.
 * Undefined labels mean no class for every image.
 */
export function classRows(config: UNetConfig, labels: readonly number[] | undefined, b: number): number[] {
  const n = config.numClasses ?? 0;
  if (!n) {
    if (labels && labels.some((l) => l !== NULL_CLASS)) throw new Error('this model is not class-conditional');
    return [];
  }
  if (labels && labels.length !== b) throw new Error(`batch of ${b} images but ${labels.length} class labels`);
  return Array.from({ length: b }, (_, i) => {
    const l = labels?.[i] ?? NULL_CLASS;
    if (l === NULL_CLASS) return n;
    if (!Number.isInteger(l) || l < 0 || l >= n) throw new Error(`class ${l} is out of range 0..${n - 1}`);
    return l;
  });
}

/**
 * ε_θ(x_t, t) (or ε_θ(x_t, t, c) for a conditional model): x is [B, H, W, C] in the model's size and channels, t one
 * integer timestep per image.
 */
export function unetForward(
  params: ReadonlyMap<string, tf.Tensor>,
  config: UNetConfig,
  x: tf.Tensor4D,
  t: readonly number[],
  opts: ForwardOptions,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (h !== config.imageSize || w !== config.imageSize || c !== config.channels) {
    throw new Error(
      `model expects images of ${config.imageSize}×${config.imageSize}×${config.channels}, got ${h}×${w}×${c}`,
    );
  }
  if (t.length !== b) throw new Error(`batch of ${b} images but ${t.length} timesteps`);
  const rows = classRows(config, opts.labels, b);
  const p = (name: string): tf.Tensor => {
    const v = params.get(name);
    if (!v) throw new Error(`missing parameter '${name}'`);
    return v;
  };
  if (opts.training && config.dropout > 0 && !opts.nextSeed)
    throw new Error('training with dropout needs a seed source');
  const ctx: BlockContext = {
    p,
    groups: config.groups,
    dropout: config.dropout,
    training: opts.training,
    nextSeed: opts.nextSeed ?? (() => 0),
    ...(opts.dropout ? { dropoutOp: opts.dropout } : {}),
  };
  // Inference runs each block in a tidy of its own and releases each block's output as soon as nothing needs it: a
  // forward pass then holds the skip connections and one block's tensors, not every block's output until the end
  // (cifar10 at batch 8 on wasm: ~100 MB less heap). Training keeps them: the backward pass needs them.
  const inference = !opts.training;
  const block = <T extends tf.Tensor>(f: () => T): T => (inference ? tf.tidy(f) : f());
  return tf.tidy(() => {
    const temb0 = timestepEmbedding(t, config.ch, {
      freqShift: config.timeFreqShift,
      flipSinToCos: config.timeFlipSinToCos,
    });
    let temb = dense(swish(dense(temb0, p, 'time_embed.dense_0')), p, 'time_embed.dense_1') as tf.Tensor2D;
    // Classifier-free guidance's conditioning (Ho & Salimans 2022): the class embedding joins the time embedding.
    // As a one-hot product rather than a gather: its gradient is a matMul, which every backend has (wasm has no
    // UnsortedSegmentSum for a gather's).
    if (rows.length) {
      const table = p('class_embed.weight') as tf.Tensor2D;
      temb = tf.add(temb, tf.matMul(tf.oneHot(tf.tensor1d(rows, 'int32'), table.shape[0]), table));
    }
    const hs: tf.Tensor4D[] = [block(() => conv2d(x, p, 'conv_in'))];
    const release = (...done: tf.Tensor[]) => {
      if (inference) for (const d of done) if (!hs.includes(d as tf.Tensor4D)) d.dispose();
    };
    let res = config.imageSize;
    const levels = config.chMult.length;
    for (let l = 0; l < levels; l++) {
      for (let i = 0; i < config.numResBlocks; i++) {
        const input = hs[hs.length - 1];
        let hh = block(() => resBlock(input, temb, ctx, `down.${l}.res.${i}`));
        if (config.attnResolutions.includes(res)) {
          const r = hh;
          hh = block(() => attnBlock(r, ctx, `down.${l}.attn.${i}`, config.attnHeadDim));
          release(r);
        }
        hs.push(hh);
      }
      if (l !== levels - 1) {
        const input = hs[hs.length - 1];
        hs.push(block(() => downsample(input, p, `down.${l}.downsample`)));
        res /= 2;
      }
    }
    let hh = hs[hs.length - 1];
    const step = (f: (input: tf.Tensor4D) => tf.Tensor4D) => {
      const input = hh;
      hh = block(() => f(input));
      release(input);
    };
    step((input) => resBlock(input, temb, ctx, 'mid.res_0'));
    step((input) => attnBlock(input, ctx, 'mid.attn', config.attnHeadDim));
    step((input) => resBlock(input, temb, ctx, 'mid.res_1'));
    for (let l = levels - 1; l >= 0; l--) {
      for (let i = 0; i < config.numResBlocks + 1; i++) {
        const skip = hs.pop();
        if (!skip) throw new Error('internal: skip stack underflow');
        step((input) => resBlock(tf.concat([input, skip], 3), temb, ctx, `up.${l}.res.${i}`));
        release(skip);
        if (config.attnResolutions.includes(res))
          step((input) => attnBlock(input, ctx, `up.${l}.attn.${i}`, config.attnHeadDim));
      }
      if (l !== 0) {
        step((input) => upsample(input, p, `up.${l}.upsample`));
        res *= 2;
      }
    }
    return conv2d(groupNorm(hh, p, 'norm_out', config.groups, 'swish'), p, 'conv_out');
  });
}

/**
 * ε_θ(x, t) in inference mode (dropout off) as a function of (x, t) alone, which releases its intermediates itself
 * (tf.tidy): samplers call it outside any tidy of theirs, as a model may also answer asynchronously. A batch larger
 * than `maxBatch` runs in passes of at most that many images, which gives the same result bit for bit (every layer
 * works per image): a backend with a memory limit sets it (sidecar/parallel/wasmMemory.ts's maxInferenceBatch).
 */
export function inferenceEps(
  params: ReadonlyMap<string, tf.Tensor>,
  config: UNetConfig,
  maxBatch = Infinity,
): (x: tf.Tensor4D, t: readonly number[], labels?: readonly number[]) => tf.Tensor4D {
  return (x, t, labels) =>
    tf.tidy(() => {
      const b = x.shape[0];
      if (b <= maxBatch) return unetForward(params, config, x, t, { training: false, labels });
      const parts: tf.Tensor4D[] = [];
      for (let s = 0; s < b; s += maxBatch) {
        const n = Math.min(maxBatch, b - s);
        parts.push(
          tf.tidy(() =>
            unetForward(params, config, tf.slice(x, [s, 0, 0, 0], [n, -1, -1, -1]), t.slice(s, s + n), {
              training: false,
              labels: labels?.slice(s, s + n),
            }),
          ),
        );
      }
      return tf.concat(parts, 0);
    });
}

/** A model: its configuration and live parameters. */
export class UNet {
  readonly specs: ParamSpec[];
  constructor(
    readonly config: UNetConfig,
    readonly params: Map<string, tf.Variable>,
  ) {
    this.specs = paramSpecs(config);
    for (const s of this.specs) {
      const v = params.get(s.name);
      if (!v) throw new Error(`missing parameter '${s.name}'`);
      if (v.shape.join(',') !== s.shape.join(','))
        throw new Error(`parameter '${s.name}' has shape [${v.shape}] but the config needs [${s.shape}]`);
    }
    if (params.size !== this.specs.length)
      throw new Error(`expected ${this.specs.length} parameters, got ${params.size}`);
  }

  static create(config: UNetConfig, rng: Rng): UNet {
    return new UNet(config, initParams(paramSpecs(config), rng));
  }

  get numParams(): number {
    return countParams(this.specs);
  }

  /** Inference: ε_θ(x, t) with dropout off, the whole batch in one pass (inferenceEps splits it where memory is bounded). */
  predictEps(
    x: tf.Tensor4D,
    t: readonly number[],
    params: ReadonlyMap<string, tf.Tensor> = this.params,
    labels?: readonly number[],
  ): tf.Tensor4D {
    return inferenceEps(params, this.config)(x, t, labels);
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}
