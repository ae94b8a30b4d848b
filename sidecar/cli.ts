/**
 * The `ddpm` command line: the sidecar's jobs (sidecar/jobs/) from a terminal. Each command's flags are its request
 * schema's fields (protocol.ts; cliFlags.ts maps them), so defaults, bounds and messages are the sidecar's. Bad
 * arguments exit 2 with the usage, unreadable inputs 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { initBackend, shutdownBackend, BACKEND_NAMES, type BackendChoice } from './backend.ts';
import { parseCommand, suggestion, usageOf, UsageError, type CommandSpec } from './cliFlags.ts';
import { exitWithParent, FILTERED_CHILD_ENV, runFiltered } from './cliNativeLog.ts';
import { colorEnabled, paint, userStderr } from './cliProgress.ts';
import {
  backendText,
  terminalJson,
  terminalSafe,
  classSummary,
  evaluateProgressPrinter,
  evaluateText,
  importText,
  inspectText,
  interruptible,
  modelText,
  plural,
  progressPrinter,
  say,
  stepProgressPrinter,
  trainEventLine,
  withBackend,
  write,
} from './cliTerminal.ts';
import { classifyError } from './jobs/errors.ts';
import { evaluateCheckpoint } from './jobs/evaluate.ts';
import { ExportParamsSchema, exportWeights } from './jobs/export.ts';
import { exportDiffusers, importDiffusers } from './jobs/importModel.ts';
import { modelSummary } from './jobs/info.ts';
import { inspectCheckpoint, lossSummary } from './jobs/inspect.ts';
import { interpolateImages } from './jobs/interpolate.ts';
import { inpaintImage } from './jobs/inpaint.ts';
import { img2img } from './jobs/img2img.ts';
import { sampleCheckpoint } from './jobs/sampleCheckpoint.ts';
import { trainJobOptions } from './jobs/trainSession.ts';
import { runTrainJob } from './jobs/train.ts';
import {
  EvaluateParamsSchema,
  Img2ImgParamsSchema,
  InpaintParamsSchema,
  InspectParamsSchema,
  InterpolateParamsSchema,
  ImportParamsSchema,
  PRESET_NAMES,
  SampleParamsSchema,
  TrainParamsSchema,
} from './protocol.ts';
import { oneOf } from './validation.ts';

const backendFlag = { type: 'string', default: 'auto', value: `auto|${BACKEND_NAMES.join('|')}` } as const;
const json = { type: 'boolean' } as const;
/** Keeps Dawn's native log messages (cliNativeLog.ts) and lists the backends tried. */
const verbose = { type: 'boolean' } as const;
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
      extra: { backend: backendFlag, verbose },
    },
    (o, extra) =>
      withBackend(
        extra.backend,
        (backend) =>
          interruptible(async (signal) => {
            const r = await runTrainJob({
              ...trainJobOptions(o),
              backend,
              signal,
              onProgress: progressPrinter(),
              onEvent: (e) => say(trainEventLine(e)),
            });
            say(`${r.reason === 'done' ? 'done' : 'stopped'} at step ${r.step}: ${r.checkpoint}`);
          }),
        extra.verbose,
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
        verbose,
      },
    },
    (o, extra) =>
      withBackend(
        extra.backend,
        async () => {
          const strips = typeof extra.trajectory === 'string' || typeof extra.x0 === 'string';
          // A trajectory strip needs at least two frames: 10 unless --frames says more.
          const frames = strips ? (o.frames > 0 ? Math.max(2, o.frames) : 10) : 0;
          const progress = stepProgressPrinter(o.sampler === 'ddim' ? 'DDIM steps' : 'denoising steps');
          const r = await sampleCheckpoint({
            ...o,
            frames,
            strips,
            onWarning: (m) => say(`warning: ${m}`),
            onStep: (s) => progress(s.index + 1, s.total),
          });
          say(`${o.checkpoint}: step ${r.step}, ${r.weights} weights`);
          if (r.labels && r.classes) say(`classes: ${classSummary(r.labels, r.classes)}; guidance ${o.guidance}`);
          write(String(extra.out), r.grid);
          if (r.strips && typeof extra.trajectory === 'string') write(extra.trajectory, r.strips.xt);
          if (r.strips && typeof extra.x0 === 'string') write(extra.x0, r.strips.x0);
          say(
            `${o.n} samples, ${o.sampler}${o.sampler === 'ddim' ? `-${o.steps}` : ''}, ${r.seconds.toFixed(1)} s on ${plural(r.threads, 'thread')}`,
          );
        },
        extra.verbose,
      ),
  ),
  interpolate: command(
    {
      schema: InterpolateParamsSchema,
      rename: { checkpoint: 'ckpt', imageA: 'a', imageB: 'b' },
      placeholder: { checkpoint: 'FILE', imageA: 'IMG', imageB: 'IMG' },
      omit: ['token'],
      extra: { out: { type: 'string', default: 'interpolation.png' }, backend: backendFlag, verbose },
    },
    (o, extra) =>
      withBackend(
        extra.backend,
        async () => {
          const onStart = ({ threads }: { threads: number }) =>
            say(
              `denoising ${plural(o.lambdas.length, 'interpolation')} from t = ${o.t} on ${plural(threads, 'thread')}`,
            );
          const onProgress = stepProgressPrinter('denoising steps');
          const r = await interpolateImages({ ...o, onWarning: (m) => say(`warning: ${m}`), onStart, onProgress });
          write(String(extra.out), r.strip);
          say(`input a, λ = ${o.lambdas.join(', ')}, input b (t = ${o.t}), ${r.seconds.toFixed(1)} s`);
        },
        extra.verbose,
      ),
  ),
  inpaint: command(
    {
      schema: InpaintParamsSchema,
      rename: { checkpoint: 'ckpt' },
      placeholder: { checkpoint: 'FILE', image: 'IMG', mask: 'MASK.png' },
      omit: ['token', 'frames'],
      extra: { out: { type: 'string', default: 'inpainting.png' }, backend: backendFlag, verbose },
    },
    (o, extra) =>
      withBackend(
        extra.backend,
        async () => {
          const progress = stepProgressPrinter('RePaint steps');
          const r = await inpaintImage({
            ...o,
            onWarning: (m) => say(`warning: ${m}`),
            onStart: (s) =>
              say(
                `inpainting ${plural(o.n, 'image')}: ${s.modelSteps} denoising steps (${o.steps} timesteps, jumps of ${o.jumps}, r = ${o.resample}) on ${plural(s.threads, 'thread')}`,
              ),
            onStep: (s) => progress(s.index + 1, s.total),
          });
          if (r.labels && r.classes) say(`classes: ${classSummary(r.labels, r.classes)}; guidance ${o.guidance}`);
          write(String(extra.out), r.grid);
          say(`${o.n} inpaintings of ${o.image}, ${r.seconds.toFixed(1)} s`);
        },
        extra.verbose,
      ),
  ),
  img2img: command(
    {
      schema: Img2ImgParamsSchema,
      rename: { checkpoint: 'ckpt' },
      placeholder: { checkpoint: 'FILE', image: 'IMG' },
      omit: ['token', 'frames'],
      extra: { out: { type: 'string', default: 'img2img.png' }, backend: backendFlag, verbose },
    },
    (o, extra) =>
      withBackend(
        extra.backend,
        async () => {
          const progress = stepProgressPrinter(o.sampler === 'ddim' ? 'DDIM steps' : 'denoising steps');
          const r = await img2img({
            ...o,
            onWarning: (m) => say(`warning: ${m}`),
            onStart: (s) =>
              say(
                `${plural(o.n, 'edit')} of ${o.image} from t0 = ${s.t0} (strength ${o.strength}): ${plural(s.modelSteps, 'step')} on ${plural(s.threads, 'thread')}`,
              ),
            onStep: (s) => progress(s.index + 1, s.total),
          });
          if (r.labels && r.classes) say(`classes: ${classSummary(r.labels, r.classes)}; guidance ${o.guidance}`);
          write(String(extra.out), r.grid);
          say(`${o.n} edits, ${r.seconds.toFixed(1)} s`);
        },
        extra.verbose,
      ),
  ),
  eval: command(
    {
      schema: EvaluateParamsSchema,
      rename: { checkpoint: 'ckpt' },
      placeholder: { checkpoint: 'FILE', data: 'mnist|idx:PATH|cifar10:PATH|folder:PATH' },
      omit: ['token'],
      extra: { json, backend: backendFlag, verbose },
    },
    (o, extra) =>
      withBackend(
        extra.backend,
        async () => {
          const r = await evaluateCheckpoint({
            ...o,
            onWarning: (m) => say(`warning: ${m}`),
            onStart: (s) =>
              say(
                `${o.checkpoint}: bits/dim of ${plural(s.n, 'image')} of ${o.data} over T = ${s.T}: ${s.total.toLocaleString('en-US')} forward passes on ${plural(s.threads, 'thread')}${s.note ? `\nnote: ${s.note}` : ''}`,
              ),
            onProgress: evaluateProgressPrinter(),
          });
          console.log(extra.json ? JSON.stringify(r) : evaluateText(r));
        },
        extra.verbose,
      ),
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
          terminalJson({
            ...r,
            format: r.format ?? 'foreign safetensors',
            lossHistory: loss,
            metadata: r.format ? undefined : r.metadata,
          }),
        );
      else console.log(inspectText(r, loss));
    },
  ),
  import: command(
    {
      schema: ImportParamsSchema,
      placeholder: { path: 'DIR', out: 'FILE', repo: 'OWNER/NAME' },
      positional: 'path',
      extra: { json },
    },
    async (o, extra) => {
      const r = importDiffusers(o);
      if (extra.json) console.log(JSON.stringify(r));
      else say(importText(r));
    },
  ),
  export: command(
    {
      schema: ExportParamsSchema,
      rename: { checkpoint: 'ckpt' },
      placeholder: { checkpoint: 'FILE', out: 'FILE|DIR' },
    },
    async (o) => {
      if (o.format === 'diffusers') {
        const r = exportDiffusers(o);
        say(
          `wrote ${r.out}${o.pipeline ? ' (a DDPMPipeline folder)' : ''}: ${r.files.map((f) => path.relative(r.out, f)).join(', ')} (${(r.bytes / 2 ** 20).toFixed(1)} MB, ${r.weights === 'ema' ? 'EMA' : 'raw'} weights of step ${r.step}${o.f16 ? ', float16' : ''})`,
        );
        return;
      }
      if (o.pipeline) throw new UsageError('--pipeline is for --format diffusers');
      const r = exportWeights(o);
      say(
        `wrote ${r.out} (${(r.bytes / 2 ** 20).toFixed(1)} MB, ${r.weights === 'ema' ? 'EMA' : 'raw'} weights of step ${r.step}${o.f16 ? ', float16' : ''})`,
      );
    },
  ),
  info: command({ schema: z.object({}), extra: { backend: backendFlag, json, verbose } }, async (_o, extra) => {
    const report = await initBackend(extra.backend as BackendChoice);
    await shutdownBackend();
    console.log(extra.json ? JSON.stringify(report) : backendText(report));
  }),
  model: command({ schema: z.object({ preset: oneOf(PRESET_NAMES) }), extra: { json } }, async (o, extra) => {
    const m = modelSummary(o.preset);
    console.log(extra.json ? JSON.stringify(m) : modelText(m));
  }),
};

/** One line on what each command does, for `ddpm --help`. */
const SUMMARIES: Record<string, string> = {
  train: 'train a model on MNIST, CIFAR-10 or a folder of images (resumable; Ctrl-C saves a checkpoint)',
  sample: 'sample images from a checkpoint (DDIM or DDPM), with the trajectory if asked',
  interpolate: 'interpolate two images in the latent x_t of a checkpoint',
  inpaint: 'fill the white part of a mask over an image (RePaint: resampling with jumps)',
  img2img: 'turn an image or a sketch into samples that follow it (SDEdit, at a strength t0/T)',
  eval: 'bits/dim of a checkpoint on held-out images, and sample quality with --quality',
  inspect: "a checkpoint's model, schedule, training and tensors",
  import: 'a diffusers UNet2DModel folder (e.g. google/ddpm-cifar10-32) as a checkpoint',
  export: 'the weights of a checkpoint alone (EMA or raw, float32 or float16), or as a diffusers model folder',
  info: 'the compute backend this machine gets, and why not the others',
  model: "a preset model's size and shape",
};

const USAGE = `usage:\n${Object.entries(COMMANDS)
  .map(([name, c]) => `  ddpm ${name} ${usageOf(c.spec)}`)
  .join('\n')}\n  ddpm help [COMMAND] | ddpm COMMAND --help | ddpm --version`;

/** The version of the package this file belongs to (dist/ddpm.js and sidecar/cli.ts are both one folder down). */
function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    `ddpm ${version()}: train, sample and evaluate denoising diffusion models (DDPM Studio's command line)`,
    '',
    'commands:',
    ...Object.keys(COMMANDS).map((n) => `  ${n.padEnd(width)}  ${SUMMARIES[n] ?? ''}`),
    '',
    USAGE,
    '',
    'Results go to stdout (--json where offered) and to files; progress, messages and errors to stderr. Progress is a',
    'bar when stderr is a terminal, a line every few seconds otherwise. --verbose also shows the native WebGPU (Dawn)',
    'log and the backends tried. NO_COLOR=1 turns colour off. Exit status: 0 done, 1 failed, 2 bad usage, 130',
    'interrupted.',
  ].join('\n');
}

function commandHelp(name: string): string {
  return `usage: ddpm ${name} ${usageOf(COMMANDS[name].spec)}\n\n${SUMMARIES[name] ?? ''}`;
}

const isHelp = (a: string) => a === '--help' || a === '-h';
const known = (name: string | undefined) => name !== undefined && Object.hasOwn(COMMANDS, name);
const unknownCommand = (name: string) =>
  new UsageError(`unknown command '${name}'${suggestion(name, Object.keys(COMMANDS), '')}`);

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) throw new UsageError('no command given');
    if (command === '--version' || command === '-V' || command === 'version') {
      console.log(version());
      return 0;
    }
    if (isHelp(command) || (command === 'help' && rest.length === 0)) {
      console.log(help());
      return 0;
    }
    if (command === 'help') {
      if (!known(rest[0])) throw unknownCommand(rest[0]);
      console.log(commandHelp(rest[0]));
      return 0;
    }
    if (!known(command)) throw unknownCommand(command);
    if (rest.some(isHelp)) {
      console.log(commandHelp(command));
      return 0;
    }
    await COMMANDS[command].run(rest);
    return 0;
  } catch (e) {
    const color = colorEnabled(userStderr());
    console.error(`${paint(color, 'red', 'ddpm:')} ${terminalSafe((e as Error).message)}`);
    if (e instanceof UsageError)
      console.error(known(command) ? `usage: ddpm ${command} ${usageOf(COMMANDS[command].spec)}` : USAGE);
    return e instanceof UsageError ? 2 : classifyError(e) === 'cancelled' ? 130 : 1;
  }
}

/**
 * Whether to run the command in a child whose stderr is filtered of Dawn's native log (cliNativeLog.ts): commands
 * that start a backend, unless --verbose or DDPM_VERBOSE=1 asks for everything, or this is that child already.
 */
function filterNativeLog(argv: string[]): boolean {
  const [command, ...rest] = argv;
  if (process.env[FILTERED_CHILD_ENV] || process.env.DDPM_VERBOSE === '1') return false;
  if (!known(command) || !COMMANDS[command].spec.extra?.backend) return false;
  return !rest.some((a) => isHelp(a) || a === '--verbose');
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (process.env[FILTERED_CHILD_ENV]) exitWithParent();
  void (filterNativeLog(argv) ? runFiltered(__filename, argv) : main(argv)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: Error) => {
      console.error(`ddpm: ${e.message}`);
      process.exitCode = 1;
    },
  );
}
