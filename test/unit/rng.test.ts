// The host RNG's bulk dropout mask: the same stream as nextU32, the asked-for rate, the inverted-dropout scale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import { dropout } from '../../sidecar/ddpm/layers.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';

test('fillDropoutMask draws the same stream as nextU32 and leaves the generator in the same state', () => {
  for (const rate of [0, 0.1, 0.5, 0.9]) {
    const bulk = new Rng(42);
    const single = new Rng(42);
    const mask = new Float32Array(4097);
    bulk.fillDropoutMask(mask, rate);
    const threshold = Math.floor(rate * 2 ** 32);
    for (let i = 0; i < mask.length; i++) {
      const want = single.nextU32() >= threshold ? Math.fround(1 / (1 - rate)) : 0;
      assert.equal(mask[i], want, `rate ${rate}, element ${i}`);
    }
    assert.deepEqual(bulk.state(), single.state());
  }
  assert.throws(() => new Rng(1).fillDropoutMask(new Float32Array(4), 1), /dropout rate must be in \[0, 1\)/);
});

test('dropout zeroes about `rate` of the elements, scales the rest by 1/(1 − rate), and is reproducible by seed', async () => {
  await initBackend('wasm');
  const x = tf.ones([4, 16, 16, 32]) as tf.Tensor4D;
  const a = await dropout(x, 0.1, 7).data();
  const b = await dropout(x, 0.1, 7).data();
  const c = await dropout(x, 0.1, 8).data();
  const zeros = a.filter((v) => v === 0).length / a.length;
  assert.ok(Math.abs(zeros - 0.1) < 0.01, `zero fraction ${zeros}`);
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 1 / 0.9) < 1e-6));
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.notDeepEqual(Array.from(a), Array.from(c));
  const mean = Array.from(a).reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean - 1) < 0.02, `mean ${mean} (inverted dropout keeps the expectation)`);
  x.dispose();
});
