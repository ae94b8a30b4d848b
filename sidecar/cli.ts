/**
 * The `ddpm` command line over the engine.
 *   ddpm info [--backend NAME] [--json]          which backend this machine gets, and why the others were passed over
 *   ddpm model --preset NAME [--json]             architecture summary and exact parameter count of a preset
 */
import { initBackend, shutdownBackend, BACKEND_NAMES, type BackendChoice } from './backend.ts';
import { countParams, paramSpecs, presetConfig, PRESET_NAMES } from './ddpm/unet.ts';

export class UsageError extends Error {}

interface Parsed {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[]): Parsed {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags.set(a.slice(2), argv[++i]);
      else flags.set(a.slice(2), true);
    } else positional.push(a);
  }
  return { command: positional.shift(), positional, flags };
}

const USAGE = `usage:
  ddpm info [--backend auto|${BACKEND_NAMES.join('|')}] [--json]
  ddpm model --preset ${PRESET_NAMES.join('|')} [--json]`;

function str(p: Parsed, name: string, fallback?: string): string {
  const v = p.flags.get(name);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`missing --${name}`);
  }
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v;
}

async function info(p: Parsed): Promise<void> {
  const report = await initBackend(str(p, 'backend', 'auto') as BackendChoice);
  await shutdownBackend();
  if (p.flags.has('json')) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(`backend: ${report.name}\ndevice:  ${report.device}`);
  for (const a of report.attempts) console.log(`  ${a.ok ? '✓' : '✗'} ${a.name}${a.reason ? `: ${a.reason}` : ''}`);
}

function model(p: Parsed): void {
  const name = str(p, 'preset');
  const config = presetConfig(name);
  const specs = paramSpecs(config);
  const params = countParams(specs);
  if (p.flags.has('json')) {
    console.log(JSON.stringify({ preset: name, config, params, tensors: specs.length }));
    return;
  }
  const levels = config.chMult.map((m, i) => `${config.imageSize / 2 ** i}px×${config.ch * m}`).join(' → ');
  console.log(`preset ${name}: ${params.toLocaleString('en-US')} parameters in ${specs.length} tensors`);
  console.log(`  images ${config.imageSize}×${config.imageSize}×${config.channels}; ch ${config.ch}, mult (${config.chMult.join(',')}), ${config.numResBlocks} res blocks/level`);
  console.log(`  levels ${levels}; attention at ${config.attnResolutions.join(', ') || 'none'}; dropout ${config.dropout}; GroupNorm ${config.groups}`);
}

export async function main(argv: string[]): Promise<number> {
  const p = parseArgs(argv);
  try {
    switch (p.command) {
      case 'info':
        await info(p);
        return 0;
      case 'model':
        model(p);
        return 0;
      case undefined:
      case 'help':
        console.log(USAGE);
        return p.command ? 0 : 2;
      default:
        throw new UsageError(`unknown command '${p.command}'`);
    }
  } catch (e) {
    console.error(`ddpm: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(USAGE);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
