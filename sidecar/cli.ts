/**
 * The `ddpm` command line: the sidecar's jobs (sidecar/jobs/) from a terminal. Each command's flags are its request
 * schema's fields (protocol.ts; cliFlags.ts maps them), so defaults, bounds and messages are the sidecar's. Bad
 * arguments exit 2 with the usage, unreadable inputs 1.
 */
import { z } from 'zod';
import { initBackend, shutdownBackend, BACKEND_NAMES, type BackendChoice } from './backend.ts';
import { parseCommand, usageOf, UsageError, type CommandSpec } from './cliFlags.ts';
import {
  backendText,
  classSummary,
  evaluateProgressPrinter,
  evaluateText,
  inspectText,
  interruptible,
  modelText,
  plural,
  progressPrinter,
  say,
  trainEventLine,
  withBackend,
  write,
} from './cliTerminal.ts';
import { classifyError } from './jobs/errors.ts';
import { evaluateCheckpoint } from './jobs/evaluate.ts';
import { ExportParamsSchema, exportWeights } from './jobs/export.ts';
import { modelSummary } from './jobs/info.ts';
import { inspectCheckpoint, lossSummary } from './jobs/inspect.ts';
import { interpolateImages } from './jobs/interpolate.ts';
import { sampleCheckpoint } from './jobs/sampleCheckpoint.ts';
import { trainJobOptions } from './jobs/trainSession.ts';
import { runTrainJob } from './jobs/train.ts';
import {
  EvaluateParamsSchema,
  InspectParamsSchema,
  InterpolateParamsSchema,
  PRESET_NAMES,
  SampleParamsSchema,
  TrainParamsSchema,
} from './protocol.ts';
import { oneOf } from './validation.ts';

const backendFlag = { type: 'string', default: 'auto', value: `auto|${BACKEND_NAMES.join('|')}` } as const;
const json = { type: 'boolean' } as const;
type Extra = Record<string, string | boolean | undefined>;

/** A command: its flags (a request schema, cliFlags.ts) and what it does with them. */
function command<S extends z.ZodObject>(spec: CommandSpec<S>, run: (o: z.output<S>, extra: Extra) => Promise<void>) {
  return {
    spec: spec as unknown as CommandSpec<z.ZodObject>,
    run: (argv: string[]) => {
      const { params, extra } = parseCommand(spec, argv);
      return run(params, extra);
    },
  };
}

const COMMANDS: Record<string, ReturnType<typeof command>> = {
  train: command(
    {
      schema: TrainParamsSchema,
      placeholder: { data: 'mnist|idx:PATH|cifar10:PATH|folder:PATH', out: 'RUN_DIR', lr: 'X', emaDecay: 'X' },
      extra: { backend: backendFlag },
    },
    (o, extra) =>
      withBackend(extra.backend, (backend) =>
        interruptible(async (signal) => {
          const tty = process.stderr.isTTY;
          const progress = progressPrinter(tty, say);
          const r = await runTrainJob({
            ...trainJobOptions(o),
            backend,
            signal,
            onProgress: progress,
            onEvent: (e) => say(`${tty ? '\n' : ''}${trainEventLine(e)}`),
          });
          say(`${tty ? '\n' : ''}${r.reason === 'done' ? 'done' : 'stopped'} at step ${r.step}: ${r.checkpoint}`);
        }),
      ),
  ),
  sample: command(
    {
      schema: SampleParamsSchema,
      rename: { checkpoint: 'ckpt' },
      placeholder: { checkpoint: 'FILE' },
      omit: ['token'],
      extra: {
        out: { type: 'string', default: 'samples.png' },
        trajectory: { type: 'string', value: 'traj.png' },
        x0: { type: 'string', value: 'x0.png' },
        backend: backendFlag,
      },
    },
    (o, extra) =>
      withBackend(extra.backend, async () => {
        const strips = typeof extra.trajectory === 'string' || typeof extra.x0 === 'string';
        // A trajectory strip needs at least two frames: 10 unless --frames says more.
        const frames = strips ? (o.frames > 0 ? Math.max(2, o.frames) : 10) : 0;
        const r = await sampleCheckpoint({ ...o, frames, strips, onWarning: (m) => say(`warning: ${m}`) });
        say(`${o.checkpoint}: step ${r.step}, ${r.weights} weights`);
        if (r.labels && r.classes) say(`classes: ${classSummary(r.labels, r.classes)}; guidance ${o.guidance}`);
        write(String(extra.out), r.grid);
        if (r.strips && typeof extra.trajectory === 'string') write(extra.trajectory, r.strips.xt);
        if (r.strips && typeof extra.x0 === 'string') write(extra.x0, r.strips.x0);
        say(
          `${o.n} samples, ${o.sampler}${o.sampler === 'ddim' ? `-${o.steps}` : ''}, ${r.seconds.toFixed(1)} s on ${plural(r.threads, 'thread')}`,
        );
      }),
  ),
  interpolate: command(
    {
      schema: InterpolateParamsSchema,
      rename: { checkpoint: 'ckpt', imageA: 'a', imageB: 'b' },
      placeholder: { checkpoint: 'FILE', imageA: 'IMG', imageB: 'IMG' },
      omit: ['token'],
      extra: { out: { type: 'string', default: 'interpolation.png' }, backend: backendFlag },
    },
    (o, extra) =>
      withBackend(extra.backend, async () => {
        const onStart = ({ threads }: { threads: number }) =>
          say(`denoising ${plural(o.lambdas.length, 'interpolation')} from t = ${o.t} on ${plural(threads, 'thread')}`);
        const r = await interpolateImages({ ...o, onWarning: (m) => say(`warning: ${m}`), onStart });
        write(String(extra.out), r.strip);
        say(`input a, λ = ${o.lambdas.join(', ')}, input b (t = ${o.t}), ${r.seconds.toFixed(1)} s`);
      }),
  ),
  eval: command(
    {
      schema: EvaluateParamsSchema,
      rename: { checkpoint: 'ckpt' },
      placeholder: { checkpoint: 'FILE', data: 'mnist|idx:PATH|cifar10:PATH|folder:PATH' },
      omit: ['token'],
      extra: { json, backend: backendFlag },
    },
    (o, extra) =>
      withBackend(extra.backend, async () => {
        const r = await evaluateCheckpoint({
          ...o,
          onWarning: (m) => say(`warning: ${m}`),
          onStart: (s) =>
            say(
              `${o.checkpoint}: bits/dim of ${plural(s.n, 'image')} of ${o.data} over T = ${s.T}: ${s.total.toLocaleString('en-US')} forward passes on ${plural(s.threads, 'thread')}${s.note ? `\nnote: ${s.note}` : ''}`,
            ),
          onProgress: evaluateProgressPrinter(process.stderr.isTTY),
        });
        console.log(extra.json ? JSON.stringify(r) : evaluateText(r));
      }),
  ),
  inspect: command(
    {
      schema: InspectParamsSchema,
      rename: { path: 'ckpt' },
      placeholder: { path: 'FILE' },
      positional: 'path',
      extra: { json },
    },
    async (o, extra) => {
      const r = inspectCheckpoint(o.path);
      const loss = lossSummary(r.lossHistory);
      if (extra.json)
        console.log(
          JSON.stringify({
            ...r,
            format: r.format ?? 'foreign safetensors',
            lossHistory: loss,
            metadata: r.format ? undefined : r.metadata,
          }),
        );
      else console.log(inspectText(r, loss));
    },
  ),
  export: command(
    { schema: ExportParamsSchema, rename: { checkpoint: 'ckpt' }, placeholder: { checkpoint: 'FILE', out: 'FILE' } },
    async (o) => {
      const r = exportWeights(o);
      say(
        `wrote ${r.out} (${(r.bytes / 2 ** 20).toFixed(1)} MB, ${r.weights === 'ema' ? 'EMA' : 'raw'} weights of step ${r.step}${o.f16 ? ', float16' : ''})`,
      );
    },
  ),
  info: command({ schema: z.object({}), extra: { backend: backendFlag, json } }, async (_o, extra) => {
    const report = await initBackend(extra.backend as BackendChoice);
    await shutdownBackend();
    console.log(extra.json ? JSON.stringify(report) : backendText(report));
  }),
  model: command({ schema: z.object({ preset: oneOf(PRESET_NAMES) }), extra: { json } }, async (o, extra) => {
    const m = modelSummary(o.preset);
    console.log(extra.json ? JSON.stringify(m) : modelText(m));
  }),
};

const USAGE = `usage:\n${Object.entries(COMMANDS)
  .map(([name, c]) => `  ddpm ${name} ${usageOf(c.spec)}`)
  .join('\n')}\n  ddpm help | --help`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  try {
    const c = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!c) throw new UsageError(`unknown command '${command}'`);
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(`usage: ddpm ${command} ${usageOf(c.spec)}`);
      return 0;
    }
    await c.run(rest);
    return 0;
  } catch (e) {
    console.error(`ddpm: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(USAGE);
    return e instanceof UsageError ? 2 : classifyError(e) === 'cancelled' ? 130 : 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
