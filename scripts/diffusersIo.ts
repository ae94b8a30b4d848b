/**
 * The check of `npm run check-import`: a diffusers model folder with `io.json` (the format of
 * ../shared/golden/diffusers/small/: an input batch, timesteps, diffusers' output, extra cases with config overrides
 * and their outputs, `tolerance.abs`) imported and run through our forward pass, case by case.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { unetForward } from '../sidecar/ddpm/unet.ts';
import { readDiffusersModel } from '../sidecar/interop/diffusersFolder.ts';

export interface CaseResult {
  name: string;
  /** Worst |ours − diffusers| over the output, where (NHWC index), and the bound. */
  maxAbs: number;
  meanAbs: number;
  worstIndex: number;
  tolerance: number;
  ok: boolean;
  /** Attention heads in this case's config (1 for attention_head_dim null). */
  headDim: number | null;
}

/** Thrown when the folder or its io.json cannot be read (exit 2), as opposed to a failed comparison (exit 1). */
export class UnreadableError extends Error {
  override name = 'UnreadableError';
}

interface IoCase {
  name: string;
  config_override?: Record<string, unknown>;
  output_nhwc?: number[];
  output_nchw?: number[];
}

const nums = (v: unknown, what: string): number[] => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number'))
    throw new UnreadableError(`io.json: ${what} is not a list of numbers`);
  return v as number[];
};

/** NCHW (flattened row-major) → NHWC. */
export function nchwToNhwc(data: readonly number[], [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + k] = data[((b * c + k) * h + y) * w + x];
  return out;
}

export async function checkDiffusersFolder(dir: string): Promise<CaseResult[]> {
  const ioFile = path.join(dir, 'io.json');
  let io: Record<string, unknown>;
  try {
    io = JSON.parse(fs.readFileSync(ioFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UnreadableError(`cannot read ${ioFile}: ${(e as Error).message}`);
  }
  const tol = (io.tolerance as { abs?: unknown } | undefined)?.abs;
  if (typeof tol !== 'number' || !(tol > 0))
    throw new UnreadableError(`${ioFile}: tolerance.abs must be a positive number`);
  const t = nums(io.timesteps, 'timesteps');
  const shapeNhwc = io.x_shape_nhwc !== undefined ? nums(io.x_shape_nhwc, 'x_shape_nhwc') : undefined;
  const shapeNchw = io.x_shape_nchw !== undefined ? nums(io.x_shape_nchw, 'x_shape_nchw') : undefined;
  let x: Float32Array;
  let shape: [number, number, number, number];
  if (shapeNhwc && io.x_nhwc !== undefined) {
    x = Float32Array.from(nums(io.x_nhwc, 'x_nhwc'));
    shape = shapeNhwc as [number, number, number, number];
  } else if (shapeNchw && io.x_nchw !== undefined) {
    x = nchwToNhwc(nums(io.x_nchw, 'x_nchw'), shapeNchw);
    const [n, c, h, w] = shapeNchw;
    shape = [n, h, w, c];
  } else throw new UnreadableError(`${ioFile}: no input x (x_nhwc with x_shape_nhwc, or x_nchw with x_shape_nchw)`);
  if (shape.length !== 4 || x.length !== shape.reduce((a, b) => a * b, 1) || t.length !== shape[0])
    throw new UnreadableError(`${ioFile}: the input's shape, values and timesteps do not agree`);
  const outShapeNchw = [shape[0], shape[3], shape[1], shape[2]];
  const expected = (c: IoCase): Float32Array => {
    if (c.output_nhwc !== undefined) return Float32Array.from(nums(c.output_nhwc, `${c.name}: output_nhwc`));
    if (c.output_nchw !== undefined) return nchwToNhwc(nums(c.output_nchw, `${c.name}: output_nchw`), outShapeNchw);
    throw new UnreadableError(`${ioFile}: case ${c.name} has no output`);
  };
  const cases: IoCase[] = [
    {
      name: 'main',
      output_nhwc: io.output_nhwc as number[] | undefined,
      output_nchw: io.output_nchw as number[] | undefined,
    },
    ...((Array.isArray(io.extra_cases) ? io.extra_cases : []) as IoCase[]),
  ];
  const results: CaseResult[] = [];
  for (const c of cases) {
    const want = expected(c);
    let model;
    try {
      model = readDiffusersModel(dir, c.config_override ?? {});
    } catch (e) {
      throw new UnreadableError(`case ${c.name}: ${(e as Error).message}`);
    }
    const params = new Map([...model.weights].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
    try {
      const xt = tf.tensor4d(x, shape);
      const y = unetForward(params, model.config, xt, t, { training: false });
      const got = (await y.data()) as Float32Array;
      tf.dispose([xt, y]);
      if (got.length !== want.length)
        throw new UnreadableError(`case ${c.name}: the output has ${got.length} values, io.json ${want.length}`);
      let maxAbs = 0;
      let sum = 0;
      let worstIndex = 0;
      for (let i = 0; i < got.length; i++) {
        const d = Math.abs(got[i] - want[i]);
        sum += d;
        if (!(d <= maxAbs)) {
          maxAbs = d;
          worstIndex = i;
        }
      }
      results.push({
        name: c.name,
        maxAbs,
        meanAbs: sum / got.length,
        worstIndex,
        tolerance: tol,
        ok: maxAbs <= tol,
        headDim: model.config.attnHeadDim ?? null,
      });
    } finally {
      tf.dispose([...params.values()]);
    }
  }
  return results;
}
