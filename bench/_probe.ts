import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../sidecar/backend.ts';
import { Rng } from '../sidecar/ddpm/rng.ts';
import { presetConfig, UNet } from '../sidecar/ddpm/unet.ts';
async function main() {
  await initBackend('wasm');
  const model = UNet.create(presetConfig('cifar10'), new Rng(1));
  const b = Number(process.argv[2]);
  const x = tf.randomNormal([b, 32, 32, 3]) as tf.Tensor4D;
  const t0 = performance.now();
  try {
    const y = model.predictEps(x, new Array(b).fill(10));
    await y.data();
    console.log('ok', b, ((performance.now() - t0) / 1000).toFixed(1), 's', 'heap', ((tf.backend() as any).wasm.HEAPU8.length / 1e6).toFixed(0));
  } catch (e) { console.log('ERR', b, (e as Error).message); }
  try { const z = model.predictEps(tf.randomNormal([2, 32, 32, 3]) as tf.Tensor4D, [1, 2]); await z.data(); console.log('after: still works'); } catch (e) { console.log('after: broken', (e as Error).message); }
}
main();
