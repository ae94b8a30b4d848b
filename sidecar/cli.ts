/**
 * The `ddpm` command line: the sidecar's jobs (sidecar/jobs/) from a terminal. Each command's flags are its request
 * schema's fields (protocol.ts; cliFlags.ts maps them), so defaults, bounds and messages are the sidecar's. Bad
 * arguments exit 2 with the usage, unreadable inputs 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { initBackend, shutdownBackend, BACKEND_NAMES, type BackendChoice } from './backend.ts';
import { parseCommand, usageOf, UsageError, type CommandSpec } from './cliFlags.ts';
import { classifyError } from './jobs/errors.ts';
import { ExportParamsSchema, exportWeights } from './jobs/export.ts';
import { modelSummary } from './jobs/info.ts';
import { inspectCheckpoint, lossSummary } from './jobs/inspect.ts';
import { interpolateImages } from './jobs/interpolate.ts';
import { sampleCheckpoint } from './jobs/sampleCheckpoint.ts';
import { trainJobOptions } from './jobs/trainSession.ts';
import { runTrainJob, type TrainProgress } from './jobs/train.ts';
import { InspectParamsSchema, InterpolateParamsSchema, PRESET_NAMES, SampleParamsSchema, TrainParamsSchema } from './protocol.ts';
import { oneOf } from './validation.ts';

const backendFlag = { type: 'string', default: 'auto', value: `auto|${BACKEND_NAMES.join('|')}` } as const;

const COMMANDS = {
  train: { schema: TrainParamsSchema, placeholder: { data: 'mnist|idx:PATH|cifar10:PATH|folder:PATH', out: 'RUN_DIR', lr: 'X', emaDecay: 'X' }, extra: { backend: backendFlag } },
  sample: {
    schema: SampleParamsSchema,
    rename: { checkpoint: 'ckpt' },
    placeholder: { checkpoint: 'FILE' },
    omit: ['token'],
    extra: { out: { type: 'string', default: 'samples.png' }, trajectory: { type: 'string', value: 'traj.png' }, x0: { type: 'string', value: 'x0.png' }, backend: backendFlag },
  },
  interpolate: { schema: InterpolateParamsSchema, rename: { checkpoint: 'ckpt', imageA: 'a', imageB: 'b' }, placeholder: { checkpoint: 'FILE', imageA: 'IMG', imageB: 'IMG' }, omit: ['token'], extra: { out: { type: 'string', default: 'interpolation.png' }, backend: backendFlag } },
  inspect: { schema: InspectParamsSchema, rename: { path: 'ckpt' }, placeholder: { path: 'FILE' }, positional: 'path', extra: { json: { type: 'boolean' } } },
  export: { schema: ExportParamsSchema, rename: { checkpoint: 'ckpt' }, placeholder: { checkpoint: 'FILE', out: 'FILE' } },
  info: { schema: z.object({}), extra: { backend: backendFlag, json: { type: 'boolean' } } },
  model: { schema: z.object({ preset: oneOf(PRESET_NAMES) }), extra: { json: { type: 'boolean' } } },
} satisfies Record<string, CommandSpec<z.ZodObject>>;
type Command = keyof typeof COMMANDS;

const USAGE = `usage:\n${Object.entries(COMMANDS)
  .map(([name, spec]) => `  ddpm ${name} ${usageOf(spec as CommandSpec<z.ZodObject>)}`)
  .join('\n')}\n  ddpm help | --help`;

const say = (line: string) => console.error(line);

function write(file: string, png: Buffer): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, png);
  say(`wrote ${file}`);
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
}

/** One status line: redrawn in place on a terminal, printed every few seconds otherwise (logs, CI). */
function progressLine(pr: TrainProgress): string {
  const filled = Math.round((pr.step / pr.steps) * 24);
  return `[${'#'.repeat(filled)}${'-'.repeat(24 - filled)}] step ${pr.step}/${pr.steps}  loss ${pr.loss.toFixed(4)}  ${pr.itPerSec.toFixed(2)} it/s${pr.threads > 1 ? ` on ${pr.threads} threads` : ''}  ETA ${formatDuration(pr.etaSeconds)}`;
}

async function withBackend<T>(choice: unknown, f: (backend: string) => Promise<T>): Promise<T> {
  const report = await initBackend(choice as BackendChoice);
  say(`backend: ${report.name} — ${report.device}`);
  try {
    return await f(report.name);
  } finally {
    await shutdownBackend();
  }
}

async function run(command: Command, argv: string[]): Promise<void> {
  const spec = COMMANDS[command] as CommandSpec<z.ZodObject>;
  const { params, extra } = parseCommand(spec, argv);
  switch (command) {
    case 'train': {
      const o = params as z.output<typeof TrainParamsSchema>;
      const controller = new AbortController();
      let interrupts = 0;
      const onSigint = () => {
        if (++interrupts > 1) process.exit(130);
        say('\nstopping: saving a checkpoint (Ctrl-C again to quit without saving)');
        controller.abort();
      };
      process.on('SIGINT', onSigint);
      const tty = process.stderr.isTTY;
      let lastPrint = 0;
      try {
        await withBackend(extra.backend, async (backend) => {
          const r = await runTrainJob({
            ...trainJobOptions(o),
            backend,
            signal: controller.signal,
            onProgress: (pr) => {
              if (tty) process.stderr.write(`\r${progressLine(pr)}`);
              else if (Date.now() - lastPrint > 5000 || pr.step === pr.steps) {
                say(progressLine(pr));
                lastPrint = Date.now();
              }
            },
            onEvent: (e) => {
              const msg =
                e.type === 'checkpoint'
                  ? `checkpoint ${e.path}`
                  : e.type === 'samples'
                    ? `samples ${e.path}`
                    : e.type === 'resumed'
                      ? `resumed from ${e.path} at step ${e.step}`
                      : `skipped ${e.count} file(s) that are not readable images, e.g. ${e.examples.join('; ')}`;
              say(tty ? `\n${msg}` : msg);
            },
          });
          say(`${tty ? '\n' : ''}${r.reason === 'done' ? 'done' : 'stopped'} at step ${r.step}: ${r.checkpoint}`);
        });
      } finally {
        process.off('SIGINT', onSigint);
      }
      return;
    }
    case 'sample': {
      const o = params as z.output<typeof SampleParamsSchema>;
      const strips = typeof extra.trajectory === 'string' || typeof extra.x0 === 'string';
      // A trajectory strip needs at least two frames: 10 unless --frames says more.
      const frames = strips ? (o.frames > 0 ? Math.max(2, o.frames) : 10) : 0;
      await withBackend(extra.backend, async () => {
        const r = await sampleCheckpoint({ ...o, frames, strips, onWarning: (m) => say(`warning: ${m}`) });
        say(`${o.checkpoint}: step ${r.step}, ${r.weights} weights`);
        write(String(extra.out), r.grid);
        if (r.strips && typeof extra.trajectory === 'string') write(extra.trajectory, r.strips.xt);
        if (r.strips && typeof extra.x0 === 'string') write(extra.x0, r.strips.x0);
        say(`${o.n} samples, ${o.sampler}${o.sampler === 'ddim' ? `-${o.steps}` : ''}, ${r.seconds.toFixed(1)} s on ${r.threads} thread${r.threads === 1 ? '' : 's'}`);
      });
      return;
    }
    case 'interpolate': {
      const o = params as z.output<typeof InterpolateParamsSchema>;
      await withBackend(extra.backend, async () => {
        const r = await interpolateImages({
          ...o,
          onWarning: (m) => say(`warning: ${m}`),
          onStart: ({ threads }) => say(`denoising ${o.lambdas.length} interpolation${o.lambdas.length === 1 ? '' : 's'} from t = ${o.t} on ${threads} thread${threads === 1 ? '' : 's'}`),
        });
        write(String(extra.out), r.strip);
        say(`input a, λ = ${o.lambdas.join(', ')}, input b (t = ${o.t}), ${r.seconds.toFixed(1)} s`);
      });
      return;
    }
    case 'inspect': {
      const r = inspectCheckpoint((params as z.output<typeof InspectParamsSchema>).path);
      const loss = lossSummary(r.lossHistory);
      if (extra.json) {
        console.log(JSON.stringify({ ...r, format: r.format ?? 'foreign safetensors', lossHistory: loss, metadata: r.format ? undefined : r.metadata }));
        return;
      }
      console.log(`${r.path}: ${(r.fileSize / 2 ** 20).toFixed(1)} MB, ${r.format ?? 'foreign safetensors'}`);
      if (r.format && r.model && r.schedule) {
        console.log(`  ${r.kind} checkpoint, preset ${r.preset ?? '(custom)'}, step ${r.step}, ${r.params.toLocaleString('en-US')} parameters`);
        console.log(`  model ${JSON.stringify(r.model)}`);
        console.log(`  schedule ${r.schedule.kind}, T = ${r.schedule.T}; data ${r.data?.source ?? '?'}; backend ${r.backend ?? '?'}; created ${r.created}`);
        if (loss) console.log(`  loss: ${loss.points} points, step ${loss.firstStep} → ${loss.lastStep}: ${loss.first.toFixed(4)} → ${loss.last.toFixed(4)} (min ${loss.min.toFixed(4)})`);
      } else {
        console.log(`  not a DDPM Studio checkpoint: ${r.tensors.length} tensors, ${r.params.toLocaleString('en-US')} values; it can be listed, not sampled from`);
      }
      console.log(`  ${r.tensors.length} tensors:`);
      for (const t of r.tensors) console.log(`    ${t.name.padEnd(48)} ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]`);
      return;
    }
    case 'export': {
      const r = exportWeights(params as z.output<typeof ExportParamsSchema>);
      say(`wrote ${r.out} (${(r.bytes / 2 ** 20).toFixed(1)} MB, ${r.weights === 'ema' ? 'EMA' : 'raw'} weights of step ${r.step}${(params as { f16: boolean }).f16 ? ', float16' : ''})`);
      return;
    }
    case 'info': {
      const report = await initBackend(extra.backend as BackendChoice);
      await shutdownBackend();
      if (extra.json) return void console.log(JSON.stringify(report));
      console.log(`backend: ${report.name}\ndevice:  ${report.device}`);
      for (const a of report.attempts) console.log(`  ${a.ok ? '✓' : '✗'} ${a.name}${a.reason ? `: ${a.reason}` : ''}`);
      return;
    }
    case 'model': {
      const m = modelSummary((params as { preset: string }).preset);
      if (extra.json) return void console.log(JSON.stringify(m));
      const c = m.config;
      console.log(`preset ${m.preset}: ${m.params.toLocaleString('en-US')} parameters in ${m.tensors} tensors`);
      console.log(`  images ${c.imageSize}×${c.imageSize}×${c.channels}; ch ${c.ch}, mult (${c.chMult.join(',')}), ${c.numResBlocks} res blocks/level`);
      console.log(`  levels ${c.chMult.map((k, i) => `${c.imageSize / 2 ** i}px×${c.ch * k}`).join(' → ')}; attention at ${c.attnResolutions.join(', ') || 'none'}; dropout ${c.dropout}; GroupNorm ${c.groups}`);
      return;
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  try {
    if (!(command in COMMANDS)) throw new UsageError(`unknown command '${command}'`);
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(`usage: ddpm ${command} ${usageOf(COMMANDS[command as Command] as CommandSpec<z.ZodObject>)}`);
      return 0;
    }
    await run(command as Command, rest);
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
