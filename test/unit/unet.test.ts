// The U-Net: exact parameter counts, forward shapes for 1/3 channels and sizes 16/28/32, building blocks' values. The
// cifar10 preset's forward pass is in test/slow/unetCifar10.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../sidecar/backend.ts';
import {
  UNet,
  countParams,
  inferenceEps,
  paramSpecs,
  presetConfig,
  PRESETS,
  unetForward,
  validateConfig,
  type UNetConfig,
} from '../../sidecar/ddpm/unet.ts';
import { groupNorm, timestepEmbedding, attnBlock } from '../../sidecar/ddpm/layers.ts';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { peakBytesDuring } from '../helpers/tensors.ts';

test("cifar10 preset has exactly 35,746,307 parameters (the paper's 35.7M)", () => {
  assert.equal(countParams(paramSpecs(presetConfig('cifar10'))), 35_746_307);
});

test('mnist preset is a few million parameters at most; tiny is small', () => {
  const mnist = countParams(paramSpecs(presetConfig('mnist')));
  assert.equal(mnist, 1_062_497);
  assert.ok(countParams(paramSpecs(presetConfig('tiny'))) < 250_000);
});

test('parameter names are unique and hierarchical', () => {
  const specs = paramSpecs(presetConfig('cifar10'));
  const names = specs.map((s) => s.name);
  assert.equal(new Set(names).size, names.length);
  for (const n of names)
    assert.match(
      n,
      /^(time_embed|conv_in|down\.\d+\.(res|attn)\.\d+|down\.\d+\.downsample|mid\.(res_0|res_1|attn)|up\.\d+\.(res|attn)\.\d+|up\.\d+\.upsample|norm_out|conv_out)\./,
    );
  // Attention only at 16×16: level 1 on the way down and up (2 + 3 blocks) and the middle.
  const attn = new Set(
    names
      .filter((n) => n.includes('attn'))
      .map((n) =>
        n
          .split('.')
          .slice(0, n.startsWith('mid') ? 2 : 4)
          .join('.'),
      ),
  );
  assert.deepEqual([...attn].sort(), [
    'down.1.attn.0',
    'down.1.attn.1',
    'mid.attn',
    'up.1.attn.0',
    'up.1.attn.1',
    'up.1.attn.2',
  ]);
  assert.deepEqual(specs.find((s) => s.name === 'down.0.downsample.conv.weight')?.shape, [3, 3, 128, 128]);
  assert.deepEqual(specs.find((s) => s.name === 'up.3.res.0.conv1.weight')?.shape, [3, 3, 512, 256]);
  assert.deepEqual(specs.find((s) => s.name === 'conv_out.weight')?.shape, [3, 3, 128, 3]);
});

test('forward shapes for 1 and 3 channels at sizes 16, 28 and 32; output depends on t', async () => {
  await initBackend('auto');
  for (const channels of [1, 3]) {
    for (const size of [16, 28, 32]) {
      const cfg: UNetConfig = {
        imageSize: size,
        channels,
        ch: 16,
        chMult: [1, 2, 2],
        numResBlocks: 1,
        attnResolutions: [size / 2],
        dropout: 0.1,
        groups: 8,
      };
      const model = UNet.create(cfg, new Rng(size * 10 + channels));
      // Zero-initialised weights make every block the identity (and t invisible): perturb them so that the output
      // carries signal from every layer.
      for (const s of model.specs.filter((sp) => sp.init === 'zeros' && sp.name.endsWith('.weight'))) {
        const w = model.params.get(s.name)!;
        w.assign(tf.randomNormal(w.shape, 0, 0.05, 'float32', 5));
      }
      const before = tf.memory().numTensors;
      const x = tf.randomNormal([2, size, size, channels], 0, 1, 'float32', 3) as tf.Tensor4D;
      const y0 = model.predictEps(x, [0, 0]);
      const y1 = model.predictEps(x, [500, 500]);
      assert.deepEqual(y0.shape, [2, size, size, channels]);
      const dt = tf.tidy(() => tf.max(tf.abs(tf.sub(y0, y1))));
      const diff = (await dt.data())[0];
      dt.dispose();
      assert.ok(diff > 1e-4, `output does not depend on t (size ${size}, channels ${channels})`);
      tf.dispose([x, y0, y1]);
      assert.equal(tf.memory().numTensors, before);
      model.dispose();
    }
  }
});

test('a fresh model outputs exactly zero (zero-initialised conv_out)', async () => {
  await initBackend('auto');
  const model = UNet.create(presetConfig('tiny'), new Rng(1));
  const x = tf.randomNormal([2, 16, 16, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = model.predictEps(x, [999, 3]);
  assert.deepEqual(y.shape, [2, 16, 16, 1]);
  assert.equal((await tf.max(tf.abs(y)).data())[0], 0);
  tf.dispose([x, y]);
  model.dispose();
});

test('invalid configurations and inputs give clear errors', async () => {
  await initBackend('auto');
  assert.throws(() => presetConfig('imagenet'), /unknown preset 'imagenet'/);
  assert.throws(
    () => validateConfig({ ...PRESETS.tiny, chMult: [1, 2, 2], imageSize: 18 }),
    /not divisible by 2\^\(levels−1\) = 4/,
  );
  assert.throws(() => validateConfig({ ...PRESETS.tiny, channels: 2 }), /channels must be 1 or 3/);
  assert.throws(() => validateConfig({ ...PRESETS.tiny, ch: 12, groups: 8 }), /cannot be split into 8 groups/);
  const model = UNet.create(presetConfig('tiny'), new Rng(2));
  const x = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
  assert.throws(() => model.predictEps(x, [1]), /expects images of 16×16×1, got 16×16×3/);
  const y = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D;
  assert.throws(() => model.predictEps(y, [1]), /batch of 2 images but 1 timesteps/);
  tf.dispose([x, y]);
  model.dispose();
});

test('timestep embedding: sin/cos of t·exp(−ln(10⁴)·i/(half−1))', async () => {
  await initBackend('auto');
  const e = timestepEmbedding([0, 7], 8);
  const v = await e.data();
  e.dispose();
  assert.deepEqual(Array.from(v.slice(0, 8)), [0, 0, 0, 0, 1, 1, 1, 1]);
  for (let i = 0; i < 4; i++) {
    const arg = 7 * Math.exp((-Math.log(10000) * i) / 3);
    assert.ok(Math.abs(v[8 + i] - Math.sin(arg)) < 1e-6);
    assert.ok(Math.abs(v[12 + i] - Math.cos(arg)) < 1e-6);
  }
});

test("GroupNorm matches a direct computation (per image, per group over H, W and the group's channels)", async () => {
  await initBackend('auto');
  const [b, h, w, c, g] = [2, 3, 3, 4, 2];
  const data = Float32Array.from({ length: b * h * w * c }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 5));
  const x = tf.tensor4d(data, [b, h, w, c]);
  const gamma = tf.tensor1d([1, 2, 0.5, -1]);
  const beta = tf.tensor1d([0, 1, -1, 0.25]);
  const params = new Map<string, tf.Tensor>([
    ['n.gamma', gamma],
    ['n.beta', beta],
  ]);
  const y = groupNorm(x, (n) => params.get(n)!, 'n', g);
  const got = await y.data();
  const cg = c / g;
  for (let bi = 0; bi < b; bi++) {
    for (let gi = 0; gi < g; gi++) {
      const idx: number[] = [];
      for (let p = 0; p < h * w; p++) for (let k = 0; k < cg; k++) idx.push(bi * h * w * c + p * c + gi * cg + k);
      const mean = idx.reduce((s, i) => s + data[i], 0) / idx.length;
      const variance = idx.reduce((s, i) => s + (data[i] - mean) ** 2, 0) / idx.length;
      for (const i of idx) {
        const ch = i % c;
        const want = ((data[i] - mean) / Math.sqrt(variance + 1e-6)) * [1, 2, 0.5, -1][ch] + [0, 1, -1, 0.25][ch];
        assert.ok(Math.abs(got[i] - want) < 1e-5, `index ${i}: ${got[i]} vs ${want}`);
      }
    }
  }
  tf.dispose([x, gamma, beta, y]);
});

test('attention block: the identity at initialisation (zero output projection), then x plus a convex combination of v', async () => {
  await initBackend('auto');
  const [b, h, w, c] = [2, 4, 4, 8];
  const rng = new Rng(4);
  const p = new Map<string, tf.Tensor>();
  const set = (name: string, t: tf.Tensor) => {
    p.get(name)?.dispose();
    p.set(name, t);
  };
  set('a.norm.gamma', tf.ones([c]));
  set('a.norm.beta', tf.zeros([c]));
  for (const n of ['q', 'k', 'v']) {
    set(`a.${n}.weight`, tf.randomNormal([c, c], 0, 0.3, 'float32', rng.seed()));
    set(`a.${n}.bias`, tf.zeros([c]));
  }
  set('a.proj_out.weight', tf.zeros([c, c]));
  set('a.proj_out.bias', tf.zeros([c]));
  const x = tf.randomNormal([b, h, w, c], 0, 1, 'float32', 9) as tf.Tensor4D;
  const ctx = { p: (n: string) => p.get(n)!, groups: 4, dropout: 0, training: false, nextSeed: () => 0 };
  const xs = await x.data();
  const residual = async () => {
    const y = attnBlock(x, ctx, 'a');
    const d = await y.data();
    y.dispose();
    return d.map((v, i) => v - xs[i]);
  };
  assert.ok(
    (await residual()).every((v) => v === 0),
    'zero output projection: the block is the identity',
  );

  // With proj_out = I (bias 0), out − x = softmax(q·kᵀ/√c)·v at each position. Make v the same row vb at every
  // position (weight 0, bias vb): a combination of equal rows is vb exactly when each row of attention weights sums to 1.
  set('a.proj_out.weight', tf.eye(c));
  const vb = [0.5, -1, 2, 0.25, -3, 1.5, 0.75, -0.125];
  const vWeight = p.get('a.v.weight')!.clone();
  set('a.v.weight', tf.zeros([c, c]));
  set('a.v.bias', tf.tensor1d(vb));
  const constant = await residual();
  for (let i = 0; i < constant.length; i++)
    assert.ok(
      Math.abs(constant[i] - vb[i % c]) < 1e-5,
      `element ${i}: ${constant[i]} vs ${vb[i % c]} (a row of attention weights does not sum to 1)`,
    );

  // v from the input again: out − x against a direct computation from the normalised input, and inside the range of
  // v's values over the image's positions (a convex combination), channel by channel.
  set('a.v.weight', vWeight);
  set('a.v.bias', tf.zeros([c]));
  const normed = groupNorm(x, ctx.p, 'a.norm', ctx.groups);
  const hn = await normed.data();
  normed.dispose();
  const [wq, wk, wv] = await Promise.all(['q', 'k', 'v'].map((n) => p.get(`a.${n}.weight`)!.data()));
  const n = h * w;
  const project = (wt: Float32Array | Int32Array | Uint8Array, img: number, pos: number) =>
    Array.from({ length: c }, (_, j) => {
      let s = 0;
      for (let k = 0; k < c; k++) s += hn[(img * n + pos) * c + k] * wt[k * c + j];
      return s;
    });
  const got = await residual();
  for (let img = 0; img < b; img++) {
    const q = Array.from({ length: n }, (_, i) => project(wq, img, i));
    const k = Array.from({ length: n }, (_, i) => project(wk, img, i));
    const v = Array.from({ length: n }, (_, i) => project(wv, img, i));
    for (let i = 0; i < n; i++) {
      const logits = k.map((kj) => kj.reduce((s, kv, ch) => s + kv * q[i][ch], 0) / Math.sqrt(c));
      const top = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - top));
      const z = e.reduce((s, v2) => s + v2, 0);
      for (let ch = 0; ch < c; ch++) {
        const want = e.reduce((s, ej, j) => s + (ej / z) * v[j][ch], 0);
        const d = got[(img * n + i) * c + ch];
        assert.ok(Math.abs(d - want) < 1e-4, `image ${img}, position ${i}, channel ${ch}: ${d} vs ${want}`);
        const column = v.map((vj) => vj[ch]);
        assert.ok(
          d >= Math.min(...column) - 1e-5 && d <= Math.max(...column) + 1e-5,
          `image ${img}, position ${i}, channel ${ch}: ${d} outside v's range`,
        );
      }
    }
  }
  tf.dispose([x, ...p.values()]);
});

test("inference releases each block's activations as it goes: the same output, a lower peak, no leak", async () => {
  await initBackend('wasm');
  const config = presetConfig('mnist', { dropout: 0 });
  const model = UNet.create(config, new Rng(3));
  // conv_out starts at zero (the output would be 0 either way): give it weights, so that the comparison means something.
  const out = model.params.get('conv_out.weight')!;
  out.assign(tf.randomNormal(out.shape, 0, 0.05, 'float32', 4));
  const x = tf.randomNormal([4, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  const t = [1, 200, 600, 999];
  const before = tf.memory().numTensors;
  // Training mode (dropout 0: the same function) keeps every block's output until its tidy ends, as the tape needs.
  let kept: tf.Tensor | null = null;
  let released: tf.Tensor | null = null;
  const keepAll = peakBytesDuring(() => {
    kept = unetForward(model.params, config, x, t, { training: true, nextSeed: () => 0 });
  });
  const early = peakBytesDuring(() => {
    released = model.predictEps(x, t);
  });
  assert.deepEqual(Array.from(await released!.data()), Array.from(await kept!.data()));
  tf.dispose([kept!, released!]);
  assert.equal(tf.memory().numTensors, before);
  // Measured: 18.5 vs 20.6 MB at batch 4 (its custom ops already free their own temporaries); on cifar10 at batch 8
  // the wasm heap of a forward pass drops by about 100 MB.
  assert.ok(early < 0.95 * keepAll, `peak ${early} vs ${keepAll} bytes`);
  x.dispose();
  model.dispose();
});

test('a batch larger than one pass may take runs in passes, with the same result bit for bit', async () => {
  await initBackend('wasm');
  const model = UNet.create(presetConfig('tiny'), new Rng(8));
  const out = model.params.get('conv_out.weight')!;
  out.assign(tf.randomNormal(out.shape, 0, 0.05, 'float32', 9));
  const x = tf.randomNormal([7, 16, 16, 1], 0, 1, 'float32', 10) as tf.Tensor4D;
  const t = [0, 10, 100, 300, 500, 800, 999];
  const before = tf.memory().numTensors;
  let whole: tf.Tensor | null = null;
  let inThrees: tf.Tensor | null = null;
  const peakWhole = peakBytesDuring(() => {
    whole = inferenceEps(model.params, model.config, 7)(x, t);
  });
  const peakThrees = peakBytesDuring(() => {
    inThrees = inferenceEps(model.params, model.config, 3)(x, t); // passes of 3, 3 and 1
  });
  assert.ok(peakThrees < 0.6 * peakWhole, `peak ${peakThrees} bytes in passes of 3 vs ${peakWhole} in one pass`);
  assert.equal(tf.memory().numTensors, before + 2);
  assert.deepEqual(inThrees!.shape, [7, 16, 16, 1]);
  assert.deepEqual(Array.from(await inThrees!.data()), Array.from(await whole!.data()));
  tf.dispose([whole!, inThrees!, x]);
  model.dispose();
});
