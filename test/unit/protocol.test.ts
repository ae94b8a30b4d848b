// The request schemas (sidecar/protocol.ts): one source for the sidecar's validation, the CLI's flags and the
// extension's settings defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import * as P from '../../sidecar/protocol.ts';
import { PRESET_NAMES as ENGINE_PRESETS } from '../../sidecar/ddpm/unet.ts';
import { DDIM_SPACINGS as ENGINE_SPACINGS } from '../../sidecar/ddpm/schedule.ts';
import { fieldDefault, fieldError, ParamsError, parseParams } from '../../sidecar/validation.ts';
import { parseCommand, usageOf, UsageError } from '../../sidecar/cliFlags.ts';
import { defaultFlip, trainJobOptions } from '../../sidecar/jobs/trainSession.ts';
import { repoRoot } from '../helpers/paths.ts';
import { DOC, withReference } from '../../scripts/protocol-doc.ts';

const settings = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration
  .properties as Record<
  string,
  { default: unknown; minimum?: number; exclusiveMinimum?: number; maximum?: number; enum?: string[] }
>;

/** The message of what `f` throws, which must be an instance of `type`. */
function thrown(f: () => unknown, type: new (...args: never[]) => Error): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof type, `${String(e)} is a ${type.name}`);
    return e.message;
  }
  assert.fail('nothing was thrown');
}

/** Each setting that fills a request field, and the field. */
const SETTING_FIELDS: [string, z.ZodObject, string][] = [
  ['ddpm.numSamples', P.SampleParamsSchema, 'n'],
  ['ddpm.sampler', P.SampleParamsSchema, 'sampler'],
  ['ddpm.ddimSteps', P.SampleParamsSchema, 'steps'],
  ['ddpm.sampleWorkers', P.SampleParamsSchema, 'workers'],
  ['ddpm.guidance', P.SampleParamsSchema, 'guidance'],
  ['ddpm.train.preset', P.TrainParamsSchema, 'preset'],
  ['ddpm.train.steps', P.TrainParamsSchema, 'steps'],
  ['ddpm.train.batch', P.TrainParamsSchema, 'batch'],
  ['ddpm.train.workers', P.TrainParamsSchema, 'workers'],
  ['ddpm.train.saveEvery', P.TrainParamsSchema, 'saveEvery'],
  ['ddpm.train.sampleEvery', P.TrainParamsSchema, 'sampleEvery'],
  ['ddpm.train.evalEvery', P.TrainParamsSchema, 'evalEvery'],
  ['ddpm.train.keep', P.TrainParamsSchema, 'keep'],
  ['ddpm.train.lr', P.TrainRecipeSchema, 'lr'],
  ['ddpm.train.warmup', P.TrainRecipeSchema, 'warmup'],
  ['ddpm.train.emaDecay', P.TrainRecipeSchema, 'emaDecay'],
];

test('every settings default in package.json is the default of the request field it fills, within its bounds', () => {
  for (const [key, schema, field] of SETTING_FIELDS) {
    const s = settings[key];
    assert.ok(s, `${key} is declared`);
    assert.deepEqual(s.default, fieldDefault(schema, field), `${key} defaults to the schema's ${field}`);
    const accepts = (v: unknown) => fieldError(schema, field, v) === null;
    if (s.minimum !== undefined) assert.ok(accepts(s.minimum), `${key}'s minimum ${s.minimum} is a valid ${field}`);
    if (s.exclusiveMinimum !== undefined)
      assert.ok(
        !accepts(s.exclusiveMinimum),
        `${key}'s exclusive minimum ${s.exclusiveMinimum} is not a valid ${field}`,
      );
    if (s.maximum !== undefined) assert.ok(accepts(s.maximum), `${key}'s maximum ${s.maximum} is a valid ${field}`);
    for (const e of s.enum ?? []) assert.ok(accepts(e), `${key}'s choice ${e} is a valid ${field}`);
  }
  // The settings' pattern for worker counts: auto or 1..64, as the schema.
  assert.equal(fieldError(P.SampleParamsSchema, 'workers', 64), null);
  assert.match(String(fieldError(P.SampleParamsSchema, 'workers', 65)), /must be auto or an integer in 1\.\.64/);
});

test('the protocol names the presets and DDIM spacings the engine defines', () => {
  assert.deepEqual([...P.PRESET_NAMES].sort(), [...ENGINE_PRESETS].sort());
  assert.deepEqual([...P.DDIM_SPACINGS], [...ENGINE_SPACINGS]);
});

test('sidecar params: defaults filled in, every problem named by field with what it must be', () => {
  assert.deepEqual(parseParams(P.SampleParamsSchema, { checkpoint: 'a.safetensors' }), {
    checkpoint: 'a.safetensors',
    n: 16,
    sampler: 'ddim',
    steps: 50,
    spacing: 'trailing',
    eta: 1,
    seed: 0,
    class: 'each',
    guidance: 2,
    ema: true,
    frames: 0,
    workers: 'auto',
  });
  const err = (schema: z.ZodType, raw: unknown) => thrown(() => parseParams(schema, raw), ParamsError);
  assert.equal(err(P.SampleParamsSchema, {}), "missing field 'checkpoint'");
  assert.equal(err(P.SampleParamsSchema, { checkpoint: 5 }), "field 'checkpoint' must be a non-empty string, got 5");
  assert.equal(err(P.SampleParamsSchema, { checkpoint: 'c', n: 0 }), "field 'n' must be an integer in 1..1024, got 0");
  assert.equal(
    err(P.SampleParamsSchema, { checkpoint: 'c', n: 2.5 }),
    "field 'n' must be an integer in 1..1024, got 2.5",
  );
  assert.equal(
    err(P.SampleParamsSchema, { checkpoint: 'c', sampler: 'euler' }),
    "field 'sampler' must be one of ddim, ddpm, got 'euler'",
  );
  assert.equal(
    err(P.SampleParamsSchema, { checkpoint: 'c', workers: 0 }),
    "field 'workers' must be auto or an integer in 1..64, got 0",
  );
  assert.equal(err(P.SampleParamsSchema, [1, 2]), 'params must be an object');
  assert.equal(
    err(P.InterpolateParamsSchema, { checkpoint: 'c', imageA: 'a', imageB: 'b', lambdas: [0, 2] }),
    "field 'lambdas' item 1 must be a number in [0, 1], got 2",
  );
  assert.equal(
    err(P.InterpolateParamsSchema, { checkpoint: 'c', imageA: 'a', imageB: 'b', lambdas: [] }),
    "field 'lambdas' must be a non-empty list of numbers in [0, 1], got []",
  );
  assert.equal(
    err(P.TrainParamsSchema, { data: 'mnist', out: 'o', lr: 0 }),
    "field 'lr' must be a number in (0, 1], got 0",
  );
  // Two problems, both reported.
  assert.equal(
    err(P.TrainParamsSchema, { steps: 0 }),
    "missing field 'data'; field 'steps' must be an integer in 1..1000000000, got 0; missing field 'out'",
  );
});

test('CLI flags map onto the schema: renames, --no-…, lists, numbers checked with the same messages', () => {
  const sample = {
    schema: P.SampleParamsSchema,
    rename: { checkpoint: 'ckpt' },
    omit: ['token' as const],
    extra: { out: { type: 'string' as const, default: 'samples.png' } },
  };
  const r = parseCommand(sample, ['--ckpt', 'm.safetensors', '--n', '4', '--no-ema', '--workers=2', '--out', 'g.png']);
  assert.deepEqual(r.params, {
    checkpoint: 'm.safetensors',
    n: 4,
    sampler: 'ddim',
    steps: 50,
    spacing: 'trailing',
    eta: 1,
    seed: 0,
    class: 'each',
    guidance: 2,
    ema: false,
    frames: 0,
    workers: 2,
  });
  assert.equal(parseCommand(sample, ['--ckpt', 'm', '--class', '7']).params.class, 7);
  assert.equal(parseCommand(sample, ['--ckpt', 'm', '--class', 'any']).params.class, 'any');
  assert.equal(
    thrown(() => parseCommand(sample, ['--ckpt', 'm', '--class', 'cat']), UsageError),
    "--class must be a class number, each or any, got 'cat'",
  );
  assert.equal(r.extra.out, 'g.png');
  assert.equal(parseCommand(sample, ['--ckpt', 'm']).extra.out, 'samples.png');
  const usage = (argv: string[]) => thrown(() => parseCommand(sample, argv), UsageError);
  assert.equal(usage(['--n', '4']), 'missing --ckpt');
  assert.equal(usage(['--ckpt', 'm', '--n', 'many']), "--n must be an integer in 1..1024, got 'many'");
  assert.equal(usage(['--ckpt', 'm', '--workers', '0']), '--workers must be auto or an integer in 1..64, got 0');
  assert.match(usage(['--ckpt', 'm', '--token', 't']), /unknown option '--token'/);
  assert.match(usage(['--ckpt', 'm', 'stray']), /unexpected argument 'stray'/);
  const interp = parseCommand(
    { schema: P.InterpolateParamsSchema, rename: { checkpoint: 'ckpt', imageA: 'a', imageB: 'b' } },
    ['--ckpt', 'c', '--a', 'x.png', '--b', 'y.png', '--lambdas', '0,0.5,1'],
  );
  assert.deepEqual(interp.params.lambdas, [0, 0.5, 1]);
  assert.equal(
    thrown(
      () =>
        parseCommand({ schema: P.InterpolateParamsSchema, rename: { imageA: 'a' } }, [
          '--checkpoint',
          'c',
          '--a',
          'x',
          '--image-b',
          'y',
          '--lambdas',
          '0,x',
        ]),
      UsageError,
    ),
    "--lambdas item 1 must be a number in [0, 1], got 'x'",
  );
  const inspect = parseCommand({ schema: P.InspectParamsSchema, rename: { path: 'ckpt' }, positional: 'path' }, [
    'file.safetensors',
  ]);
  assert.equal(inspect.params.path, 'file.safetensors');
  // The usage line shows the schema's defaults and choices.
  const line = usageOf(sample);
  assert.match(
    line,
    /--ckpt CHECKPOINT \[--n 16\] \[--sampler ddim\|ddpm\] \[--steps 50\] \[--spacing trailing\|linspace\|leading\] \[--eta 1\] \[--seed 0\] \[--class each\] \[--guidance 2\] \[--ema\|--no-ema\] \[--frames 0\] \[--workers auto\] \[--out samples\.png\]/,
  );
});

test("a training request: a new run gets the recipe defaults and the data's flip default; what it sets wins", () => {
  const o = parseParams(P.TrainParamsSchema, { data: 'mnist', out: 'run' });
  const j = trainJobOptions(o);
  assert.deepEqual(j.train, {});
  assert.deepEqual(j.trainDefaults, {
    lr: 2e-4,
    warmupSteps: 500,
    emaDecay: 0.999,
    microBatch: 0,
    emaWarmup: true,
    classDropout: 0.1,
    randomFlip: false,
  });
  assert.equal(j.conditional, false);
  assert.equal(j.saveEvery, 250);
  assert.equal(j.sampleEvery, 500);
  const k = trainJobOptions(
    parseParams(P.TrainParamsSchema, { data: 'folder:/x', out: 'run', lr: 1e-3, flip: false, warmup: 0 }),
  );
  assert.deepEqual(k.train, { lr: 1e-3, warmupSteps: 0, randomFlip: false });
  assert.equal(k.trainDefaults?.randomFlip, true);
  assert.deepEqual(['mnist', 'idx:/a/b.gz', 'cifar10:/c', 'folder:/d'].map(defaultFlip), [false, false, true, true]);
});

test('docs/protocol.md documents the parameters the schemas define (npm run docs:protocol regenerates it)', () => {
  const doc = fs.readFileSync(DOC, 'utf8');
  assert.equal(doc, withReference(doc), 'docs/protocol.md is stale: run npm run docs:protocol');
  assert.match(doc, /\| `ddpm\/sample` \| `n` \| integer \| `16` \| ≥ 1, ≤ 1024 \|/);
});
