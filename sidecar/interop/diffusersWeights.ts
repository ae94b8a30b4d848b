/**
 * diffusers UNet2DModel state_dict keys and PyTorch layouts ↔ our parameter names and layouts (sidecar/ddpm/unet.ts).
 *
 * Names: `down.<l>.res.<i>` is `down_blocks.<l>.resnets.<i>`, `up.<l>` is `up_blocks.<levels−1−l>` (diffusers counts
 * the up path from the bottom), the middle is `mid_block.{resnets.0, attentions.0, resnets.1}`; GroupNorm γ/β are
 * `weight`/`bias`; attention projections are `to_q/to_k/to_v/to_out.0`, or `query/key/value/proj_attn` in checkpoints
 * converted in 2022 (same shapes), both read. Layouts: a convolution is [out, in, kh, kw] there and [kh, kw, in, out]
 * here; a linear layer [out, in] there and [in, out] here; the residual blocks' 1×1 shortcut is a convolution there
 * ([out, in, 1, 1]) and a dense layer here.
 */
import { paramSpecs, type UNetConfig } from '../ddpm/unet.ts';

/** How a tensor is laid out in PyTorch relative to ours. */
export type TensorLayout = 'conv' | 'linear' | 'conv1x1' | 'vector';

export interface KeyPair {
  /** Our parameter name. */
  ours: string;
  /** The current diffusers state_dict key. */
  diffusers: string;
  /** The 2022 name of the same tensor (attention projections only). */
  legacy?: string;
  layout: TensorLayout;
  /** Our shape and PyTorch's. */
  shape: number[];
  torchShape: number[];
}

const RES_PARTS: Record<string, [string, TensorLayout]> = {
  'norm1.gamma': ['norm1.weight', 'vector'],
  'norm1.beta': ['norm1.bias', 'vector'],
  'norm2.gamma': ['norm2.weight', 'vector'],
  'norm2.beta': ['norm2.bias', 'vector'],
  'conv1.weight': ['conv1.weight', 'conv'],
  'conv1.bias': ['conv1.bias', 'vector'],
  'conv2.weight': ['conv2.weight', 'conv'],
  'conv2.bias': ['conv2.bias', 'vector'],
  'temb_proj.weight': ['time_emb_proj.weight', 'linear'],
  'temb_proj.bias': ['time_emb_proj.bias', 'vector'],
  'skip.weight': ['conv_shortcut.weight', 'conv1x1'],
  'skip.bias': ['conv_shortcut.bias', 'vector'],
};

/** Attention parts: [current name, 2022 name, layout]. */
const ATTN_PARTS: Record<string, [string, string | undefined, TensorLayout]> = {
  'norm.gamma': ['group_norm.weight', undefined, 'vector'],
  'norm.beta': ['group_norm.bias', undefined, 'vector'],
  'q.weight': ['to_q.weight', 'query.weight', 'linear'],
  'q.bias': ['to_q.bias', 'query.bias', 'vector'],
  'k.weight': ['to_k.weight', 'key.weight', 'linear'],
  'k.bias': ['to_k.bias', 'key.bias', 'vector'],
  'v.weight': ['to_v.weight', 'value.weight', 'linear'],
  'v.bias': ['to_v.bias', 'value.bias', 'vector'],
  'proj_out.weight': ['to_out.0.weight', 'proj_attn.weight', 'linear'],
  'proj_out.bias': ['to_out.0.bias', 'proj_attn.bias', 'vector'],
};

const TOP: Record<string, [string, TensorLayout]> = {
  'time_embed.dense_0.weight': ['time_embedding.linear_1.weight', 'linear'],
  'time_embed.dense_0.bias': ['time_embedding.linear_1.bias', 'vector'],
  'time_embed.dense_1.weight': ['time_embedding.linear_2.weight', 'linear'],
  'time_embed.dense_1.bias': ['time_embedding.linear_2.bias', 'vector'],
  'conv_in.weight': ['conv_in.weight', 'conv'],
  'conv_in.bias': ['conv_in.bias', 'vector'],
  'norm_out.gamma': ['conv_norm_out.weight', 'vector'],
  'norm_out.beta': ['conv_norm_out.bias', 'vector'],
  'conv_out.weight': ['conv_out.weight', 'conv'],
  'conv_out.bias': ['conv_out.bias', 'vector'],
};

function torchShapeOf(shape: readonly number[], layout: TensorLayout): number[] {
  switch (layout) {
    case 'conv':
      return [shape[3], shape[2], shape[0], shape[1]];
    case 'linear':
      return [shape[1], shape[0]];
    case 'conv1x1':
      return [shape[1], shape[0], 1, 1];
    case 'vector':
      return [...shape];
  }
}

function pair(ours: string, levels: number): Omit<KeyPair, 'shape' | 'torchShape'> {
  const top = TOP[ours];
  if (top) return { ours, diffusers: top[0], layout: top[1] };
  let m = /^(down|up)\.(\d+)\.(res|attn)\.(\d+)\.(.+)$/.exec(ours);
  const block = (kind: string, part: string): { part: string; legacyPart?: string; layout: TensorLayout } => {
    if (kind === 'res') {
      const r = RES_PARTS[part];
      if (r) return { part: r[0], layout: r[1] };
    } else {
      const a = ATTN_PARTS[part];
      if (a) return { part: a[0], legacyPart: a[1], layout: a[2] };
    }
    throw new Error(`internal: no diffusers name for '${ours}'`);
  };
  if (m) {
    const [, path, l, kind, i, part] = m;
    const blockIndex = path === 'down' ? Number(l) : levels - 1 - Number(l);
    const prefix = `${path}_blocks.${blockIndex}.${kind === 'res' ? 'resnets' : 'attentions'}.${i}`;
    const b = block(kind, part);
    return {
      ours,
      diffusers: `${prefix}.${b.part}`,
      ...(b.legacyPart ? { legacy: `${prefix}.${b.legacyPart}` } : {}),
      layout: b.layout,
    };
  }
  m = /^(down|up)\.(\d+)\.(downsample|upsample)\.conv\.(weight|bias)$/.exec(ours);
  if (m) {
    const [, path, l, kind, wb] = m;
    const blockIndex = path === 'down' ? Number(l) : levels - 1 - Number(l);
    return {
      ours,
      diffusers: `${path}_blocks.${blockIndex}.${kind}rs.0.conv.${wb}`,
      layout: wb === 'weight' ? 'conv' : 'vector',
    };
  }
  m = /^mid\.(res_0|res_1|attn)\.(.+)$/.exec(ours);
  if (m) {
    const [, which, part] = m;
    const prefix = which === 'attn' ? 'mid_block.attentions.0' : `mid_block.resnets.${which === 'res_0' ? 0 : 1}`;
    const b = block(which === 'attn' ? 'attn' : 'res', part);
    return {
      ours,
      diffusers: `${prefix}.${b.part}`,
      ...(b.legacyPart ? { legacy: `${prefix}.${b.legacyPart}` } : {}),
      layout: b.layout,
    };
  }
  throw new Error(`internal: no diffusers name for '${ours}'`);
}

/** Every parameter of a model config with its diffusers key(s), layout and both shapes, in our order. */
export function diffusersKeyPairs(config: UNetConfig): KeyPair[] {
  const levels = config.chMult.length;
  return paramSpecs(config).map((s) => {
    const p = pair(s.name, levels);
    return { ...p, shape: s.shape, torchShape: torchShapeOf(s.shape, p.layout) };
  });
}

/** PyTorch layout → ours (a new array). */
export function fromTorchLayout(data: Float32Array, torchShape: readonly number[], layout: TensorLayout): Float32Array {
  if (layout === 'vector') return data;
  const out = new Float32Array(data.length);
  if (layout === 'conv') {
    const [o, i, kh, kw] = torchShape;
    for (let a = 0; a < o; a++)
      for (let b = 0; b < i; b++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = data[((a * i + b) * kh + y) * kw + x];
    return out;
  }
  // linear [out, in] and 1×1 conv [out, in, 1, 1] → [in, out]
  const [o, i] = torchShape;
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) out[b * o + a] = data[a * i + b];
  return out;
}

/** Ours → PyTorch layout (a new array). */
export function toTorchLayout(data: Float32Array, shape: readonly number[], layout: TensorLayout): Float32Array {
  if (layout === 'vector') return data;
  const out = new Float32Array(data.length);
  if (layout === 'conv') {
    const [kh, kw, i, o] = shape;
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let b = 0; b < i; b++)
          for (let a = 0; a < o; a++) out[((a * i + b) * kh + y) * kw + x] = data[((y * kw + x) * i + b) * o + a];
    return out;
  }
  const [i, o] = shape;
  for (let b = 0; b < i; b++) for (let a = 0; a < o; a++) out[a * i + b] = data[b * o + a];
  return out;
}
