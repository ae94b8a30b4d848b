/** A checkpoint's weights as tensors, for the jobs that run the model (sampling, interpolation). */
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, type CheckpointMeta } from '../checkpoint/checkpoint.ts';
import { paramSpecs } from '../ddpm/unet.ts';
import { BadInputError, requireFile } from './errors.ts';

export interface LoadedWeights {
  meta: CheckpointMeta;
  params: Map<string, tf.Tensor>;
  /** Which weights these are, for messages: 'EMA', 'raw', or what an exported file holds. */
  which: string;
}

/** The EMA weights when `useEma` and the file has them, else the raw ones. The caller disposes `params`. */
export function loadWeights(file: string, useEma: boolean): LoadedWeights {
  requireFile(file, 'checkpoint');
  const ck = loadCheckpoint(file, ['ema', 'model']);
  const ema = useEma ? ck.groups.ema : undefined;
  const group = ema ?? ck.groups.model;
  if (!group) throw new BadInputError(`${file} holds no model weights`);
  // The tensors must be the ones the file's own model config needs: a file whose header and config disagree (edited,
  // damaged) is bad input, not a shape error deep inside the U-Net.
  for (const spec of paramSpecs(ck.meta.model)) {
    const t = group.get(spec.name);
    if (!t) throw new BadInputError(`${file}: its weights do not match its model config: '${spec.name}' is missing`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i]))
      throw new BadInputError(
        `${file}: its weights do not match its model config: '${spec.name}' is [${t.shape.join(', ')}], the config needs [${spec.shape.join(', ')}]`,
      );
  }
  const exported = ck.meta.exportedFrom;
  const which = ema ? 'EMA' : exported ? `${exported.weights === 'ema' ? 'EMA' : 'raw'} (exported)` : 'raw';
  return { meta: ck.meta, params: new Map([...group].map(([k, v]) => [k, tf.tensor(v.data, v.shape)])), which };
}

export function disposeWeights(w: LoadedWeights): void {
  tf.dispose([...w.params.values()]);
}
