/**
 * The building blocks of the DDPM U-Net (Ho et al. 2020, Appendix B; the original `diffusion_tf/nn.py` and
 * `models/unet.py`), as functions of a parameter lookup. All activations are NHWC.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from './rng.ts';

/** Looks up a parameter by its full hierarchical name (see unet.ts for the naming scheme). */
export type ParamLookup = (name: string) => tf.Tensor;

/** swish / SiLU, x·σ(x): the nonlinearity used throughout the network. */
export function swish<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * Group normalisation (Wu & He 2018) over [H, W, C/G] per group, ε = 1e-6 as in the original code. The paper
 * replaced weight normalisation with group normalisation throughout (Appendix B). With `act: 'swish'` it is
 * followed by swish, as before every convolution of a residual block.
 *
 * Why a custom gradient: composed from tfjs ops, GN + swish leaves ~9 full-size intermediates on the gradient tape
 * per call (centred, scaled, transposed, γ-scaled, shifted, σ, product …), which made a training step hold ~8× the
 * activations PyTorch does. Here the tape keeps only x and the per-group statistics; the backward pass recomputes
 * x̂ from them and applies the closed-form gradient
 *   dx = rstd · (g − mean_group(g) − x̂ · mean_group(g · x̂)),  g = dL/dx̂ = dL/dy · γ,
 * with dL/dy = dL/dout · σ(y)·(1 + y·(1 − σ(y))) through swish.
 */
export function groupNorm(
  x: tf.Tensor4D,
  p: ParamLookup,
  prefix: string,
  groups: number,
  act: 'none' | 'swish' = 'none',
  eps = 1e-6,
): tf.Tensor4D {
  return groupNormAct(
    x,
    p(`${prefix}.gamma`) as tf.Tensor1D,
    p(`${prefix}.beta`) as tf.Tensor1D,
    groupsFor(x.shape[3], groups),
    act,
    eps,
  );
}

/**
 * How the per-group statistics are laid out. `rows`: a [B·G, (C/G)·H·W] view (a transpose in and out), because
 * reductions and broadcasts along the last axis are the fast paths of the wasm and JavaScript backends (a middle-axis
 * broadcast such as [B, HW, G, C/G] ⊙ [B, 1, G, 1] is ~5× slower there). `channels`: x stays NHWC and each group's
 * statistic is spread over its channels as a [B, 1, 1, C] tensor, for libtensorflow: its Eigen kernels reduce over
 * H, W and broadcast a per-channel vector at full speed, while a reduction over two non-adjacent axes or a
 * [B, 1, G, 1] broadcast is ~3–8× slower, and every extra op (a transpose and its reshapes) costs ~20–40 µs of dispatch.
 */
export type GroupNormLayout = 'rows' | 'channels';

export function groupNormLayoutFor(backend: string): GroupNormLayout {
  return backend === 'tensorflow' ? 'channels' : 'rows';
}

interface GroupView {
  /** x (NHWC) as the layout's view, in which statistics are taken. */
  toView(t: tf.Tensor4D): tf.Tensor;
  fromView(v: tf.Tensor): tf.Tensor4D;
  /** Mean over each group, broadcastable against the view. */
  groupMean(v: tf.Tensor): tf.Tensor;
}

function groupView(shape: [number, number, number, number], g: number, layout: GroupNormLayout): GroupView {
  const [b, h, w, c] = shape;
  if (layout === 'channels') {
    return {
      toView: (t) => t,
      fromView: (v) => v as tf.Tensor4D,
      groupMean: (v) => {
        const perChannel = tf.mean(v, [1, 2], true);
        if (g === c) return perChannel;
        return tf.reshape(tf.tile(tf.mean(tf.reshape(perChannel, [b, g, c / g]), 2, true), [1, 1, c / g]), [
          b,
          1,
          1,
          c,
        ]);
      },
    };
  }
  return {
    toView: (t) => tf.reshape(tf.transpose(tf.reshape(t, [b, h * w, c]), [0, 2, 1]), [b * g, (c / g) * h * w]),
    fromView: (v) => tf.reshape(tf.transpose(tf.reshape(v, [b, c, h * w]), [0, 2, 1]), shape),
    groupMean: (v) => tf.mean(v, 1, true),
  };
}

export function groupNormAct(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  groups: number,
  act: 'none' | 'swish',
  eps = 1e-6,
  layout: GroupNormLayout = groupNormLayoutFor(tf.getBackend()),
): tf.Tensor4D {
  const view = groupView(x.shape, groups, layout);
  const normalise = (xx: tf.Tensor4D, mean: tf.Tensor, rstd: tf.Tensor): tf.Tensor =>
    tf.mul(tf.sub(view.toView(xx), mean), rstd);
  // tfjs types customGrad's arguments as one list of tensors followed by the save function.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xx, gammaIn, betaIn] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    // Mean and biased variance by hand rather than tf.moments, which adds a cast op per call (on libtensorflow each op
    // costs dispatch time) and would take the statistics a second time for the normalisation.
    const xv = view.toView(xx);
    const mean = view.groupMean(xv);
    const centred = tf.sub(xv, mean);
    const rstd = tf.rsqrt(tf.add(view.groupMean(tf.square(centred)), eps));
    const y = tf.add(tf.mul(view.fromView(tf.mul(centred, rstd)), gammaIn), betaIn);
    save([xx, gammaIn, betaIn, mean, rstd]);
    return {
      value: act === 'swish' ? tf.mul(y, tf.sigmoid(y)) : y,
      // tfjs calls a custom gradient outside any tidy scope, so without this tidy its temporaries would live until
      // the whole backward pass ends (they were most of a training step's peak memory).
      gradFunc: (dOut: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, gm, bt, mu, rs] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor, tf.Tensor];
          const xhatView = normalise(xs, mu, rs);
          const xhat = view.fromView(xhatView);
          let dy = dOut as tf.Tensor4D;
          if (act === 'swish') {
            const yy = tf.add(tf.mul(xhat, gm), bt);
            const sig = tf.sigmoid(yy);
            dy = tf.mul(dy, tf.mul(sig, tf.add(1, tf.mul(yy, tf.sub(1, sig)))));
          }
          const dGamma = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
          const dBeta = tf.sum(dy, [0, 1, 2]);
          const gView = view.toView(tf.mul(dy, gm));
          const m1 = view.groupMean(gView);
          const m2 = view.groupMean(tf.mul(gView, xhatView));
          const dx = view.fromView(tf.mul(rs, tf.sub(tf.sub(gView, m1), tf.mul(xhatView, m2))));
          return [dx, dGamma, dBeta];
        }),
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}

/** The number of groups actually used for c channels: min(groups, c), which must divide c. */
export function groupsFor(c: number, groups: number): number {
  const g = Math.min(groups, c);
  if (c % g !== 0) throw new Error(`GroupNorm: ${c} channels cannot be split into ${g} groups`);
  return g;
}

/** 2-D convolution with bias; `same` padding, as in the original code (TF's SAME also for the stride-2 downsample). */
export function conv2d(x: tf.Tensor4D, p: ParamLookup, prefix: string, stride = 1): tf.Tensor4D {
  return conv2dBias(x, p(`${prefix}.weight`) as tf.Tensor4D, p(`${prefix}.bias`) as tf.Tensor1D, stride);
}

/**
 * y = conv(x, w) + b with a gradient that keeps only x and w. Why not tf.fused.conv2d: its gradient also keeps y
 * (for activations we do not use), an activation-sized buffer per convolution for the whole backward pass; and why
 * not conv2d + add: that is two kernels. Forward: the fused kernel. Backward: the two convolution-gradient kernels
 * (ours on wasm and webgpu, see kernels/) and the bias gradient Σ dy.
 */
export function conv2dBias(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, stride: number): tf.Tensor4D {
  const attrs = {
    strides: [stride, stride] as [number, number],
    pad: 'same' as const,
    dataFormat: 'NHWC' as const,
    dimRoundingMode: undefined,
  };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, bi] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    save([xi, wi]);
    return {
      value: tf.fused.conv2d({ x: xi, filter: wi, strides: stride, pad: 'same', bias: bi }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const engine = tf.engine();
        const dx = engine.runKernel('Conv2DBackpropInput', { dy, filter: ws }, {
          ...attrs,
          inputShape: xs.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        const dw = engine.runKernel('Conv2DBackpropFilter', { x: xs, dy }, {
          ...attrs,
          filterShape: ws.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        return [dx, dw, tf.sum(dy, [0, 1, 2])];
      },
    };
  });
  return op(x, w, b) as tf.Tensor4D;
}

/** Fully connected layer on the last axis (also the 1×1 "network-in-network" projections). */
export function dense(x: tf.Tensor, p: ParamLookup, prefix: string): tf.Tensor {
  return tf.tidy(() => {
    const w = p(`${prefix}.weight`) as tf.Tensor2D;
    const [cin, cout] = w.shape;
    const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, cin]);
    const y = tf.add(tf.matMul(flat, w), p(`${prefix}.bias`));
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), cout]);
  });
}

/**
 * Sinusoidal timestep embedding (Vaswani et al. 2017, as used by the paper): for half = dim/2,
 * freq_i = exp(−ln(10000)·i/(half − shift)), embedding = [sin(t·freq), cos(t·freq)]. The paper's code has shift = 1
 * and sin first; diffusers' `Timesteps` names these `downscale_freq_shift` (`freq_shift`) and `flip_sin_to_cos`
 * (cos first), and models trained with other values need them. Timesteps are host integers, so the embedding is
 * computed in float64 here and uploaded once.
 */
export function timestepEmbedding(
  t: readonly number[],
  dim: number,
  opts: { freqShift?: number; flipSinToCos?: boolean } = {},
): tf.Tensor2D {
  if (dim % 2 !== 0 || dim < 4) throw new Error(`timestep embedding dimension must be even and ≥ 4, got ${dim}`);
  const half = dim / 2;
  const shift = opts.freqShift ?? 1;
  if (half - shift <= 0) throw new Error(`timestep embedding: freq shift ${shift} must be below ${half}`);
  const scale = Math.log(10000) / (half - shift);
  const [sinAt, cosAt] = opts.flipSinToCos ? [half, 0] : [0, half];
  const out = new Float32Array(t.length * dim);
  for (let b = 0; b < t.length; b++) {
    for (let i = 0; i < half; i++) {
      const arg = t[b] * Math.exp(-scale * i);
      out[b * dim + sinAt + i] = Math.sin(arg);
      out[b * dim + cosAt + i] = Math.cos(arg);
    }
  }
  return tf.tensor2d(out, [t.length, dim]);
}

/** Nearest-neighbour ×2 upsampling followed by a 3×3 convolution. */
export function upsample(x: tf.Tensor4D, p: ParamLookup, prefix: string): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    return conv2d(tf.image.resizeNearestNeighbor(x, [h * 2, w * 2]), p, `${prefix}.conv`);
  });
}

/** A 3×3 convolution with stride 2. */
export function downsample(x: tf.Tensor4D, p: ParamLookup, prefix: string): tf.Tensor4D {
  return conv2d(x, p, `${prefix}.conv`, 2);
}

/**
 * Inverted dropout, x ⊙ mask / (1 − rate) with P(mask = 0) = rate, its mask chosen by `seed`: the same seed gives
 * the same mask, so that a training step is reproducible.
 */
export type DropoutFn = (x: tf.Tensor4D, rate: number, seed: number) => tf.Tensor4D;

export interface BlockContext {
  p: ParamLookup;
  groups: number;
  /** Dropout rate, applied only when `training` (the paper: 0.1 on CIFAR-10). */
  dropout: number;
  training: boolean;
  /** Supplies a seed for each dropout mask (seeded, so training is reproducible). */
  nextSeed: () => number;
  /**
   * How dropout is computed: `dropout` below by default; a backend may have its own (the WebGPU shader,
   * sidecar/kernels/webgpuDropout.ts, chosen by the layer that knows the backend).
   */
  dropoutOp?: DropoutFn;
}

/**
 * Inverted dropout (rate = probability of zeroing) with the mask drawn on the host by our generator (see
 * Rng.fillDropoutMask for why not tf.dropout).
 */
export function dropout(x: tf.Tensor4D, rate: number, seed: number): tf.Tensor4D {
  const mask = new Float32Array(x.size);
  new Rng(seed).fillDropoutMask(mask, rate);
  return tf.tidy(() => tf.mul(x, tf.tensor4d(mask, x.shape)));
}

/**
 * Residual block (the Wide-ResNet-style block of the original code): GN → swish → conv3×3, plus a per-channel
 * projection of the time embedding, GN → swish → dropout → conv3×3 (zero-initialised), and a 1×1 projection
 * of the input when the channel count changes.
 */
export function resBlock(x: tf.Tensor4D, temb: tf.Tensor2D, ctx: BlockContext, prefix: string): tf.Tensor4D {
  return tf.tidy(() => {
    const { p } = ctx;
    const cin = x.shape[3];
    let h = conv2d(groupNorm(x, p, `${prefix}.norm1`, ctx.groups, 'swish'), p, `${prefix}.conv1`);
    const cout = h.shape[3];
    const tproj = dense(swish(temb), p, `${prefix}.temb_proj`);
    h = tf.add(h, tf.reshape(tproj, [-1, 1, 1, cout]));
    h = groupNorm(h, p, `${prefix}.norm2`, ctx.groups, 'swish');
    if (ctx.training && ctx.dropout > 0) h = (ctx.dropoutOp ?? dropout)(h, ctx.dropout, ctx.nextSeed());
    h = conv2d(h, p, `${prefix}.conv2`);
    const skip = cin === cout ? x : (dense(x, p, `${prefix}.skip`) as tf.Tensor4D);
    return tf.add<tf.Tensor4D>(skip, h);
  });
}

/**
 * Self-attention over spatial positions: out = x + proj(attn(GN(x))), with softmax(q·kᵀ/√d) over positions. The
 * paper's blocks have one head (d = C); with `headDim` the C channels split into C/headDim heads of d = headDim
 * channels each, attended separately and concatenated (Vaswani et al. 2017, §3.2.2; diffusers' `attention_head_dim`),
 * channel j belonging to head ⌊j/d⌋. The output projection is zero-initialised, so the block starts as identity.
 */
export function attnBlock(x: tf.Tensor4D, ctx: BlockContext, prefix: string, headDim?: number): tf.Tensor4D {
  return tf.tidy(() => {
    const { p } = ctx;
    const [b, hh, ww, c] = x.shape;
    const d = headDim ?? c;
    if (c % d !== 0) throw new Error(`attention: ${c} channels cannot be split into heads of ${d}`);
    const heads = c / d;
    const n = hh * ww;
    const h = tf.reshape(groupNorm(x, p, `${prefix}.norm`, ctx.groups), [b, n, c]);
    // [b, n, c] → [b·heads, n, d]: each head's channels as a batch of its own (a no-op for one head).
    const split = (t: tf.Tensor): tf.Tensor3D =>
      heads === 1
        ? (t as tf.Tensor3D)
        : tf.reshape(tf.transpose(tf.reshape(t, [b, n, heads, d]), [0, 2, 1, 3]), [b * heads, n, d]);
    const q = split(dense(h, p, `${prefix}.q`));
    const k = split(dense(h, p, `${prefix}.k`));
    const v = split(dense(h, p, `${prefix}.v`));
    const w = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d))); // [b·heads, n, n]
    let a: tf.Tensor = tf.matMul(w, v); // [b·heads, n, d]
    if (heads !== 1) a = tf.reshape(tf.transpose(tf.reshape(a, [b, heads, n, d]), [0, 2, 1, 3]), [b, n, c]);
    const out = dense(a, p, `${prefix}.proj_out`);
    return tf.add<tf.Tensor4D>(x, tf.reshape(out, [b, hh, ww, c]));
  });
}
