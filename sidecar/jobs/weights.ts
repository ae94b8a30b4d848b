/** A checkpoint's weights as tensors, for the jobs that run the model (sampling, interpolation). */
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, type CheckpointMeta } from '../checkpoint/checkpoint.ts';
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
  const exported = ck.meta.exportedFrom;
  const which = ema ? 'EMA' : exported ? `${exported.weights === 'ema' ? 'EMA' : 'raw'} (exported)` : 'raw';
  return { meta: ck.meta, params: new Map([...group].map(([k, v]) => [k, tf.tensor(v.data, v.shape)])), which };
}

export function disposeWeights(w: LoadedWeights): void {
  tf.dispose([...w.params.values()]);
}
