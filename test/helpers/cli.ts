// The bundled `ddpm` command line (dist/ddpm.js, built by `npm run build`) run in a folder, and the size of the PNGs
// it writes there.
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { repoRoot } from './paths.ts';

export const CLI_BUNDLE = path.join(repoRoot, 'dist', 'ddpm.js');

/** The environment the CLI runs in under test: Dawn's Vulkan warnings kept out of stderr by a backend that is not there. */
export const cliEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DDPM_WEBGPU_FLAGS: 'backend=d3d12' });

/** A `ddpm …` runner in `cwd` (with cliEnv). */
export function cliIn(cwd: string) {
  return (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI_BUNDLE, ...args], {
      cwd,
      encoding: 'utf8',
      env: cliEnv(),
      timeout: 300_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

/** What tinyTrainArgs sets; the flags left out keep the CLI's defaults. */
export interface TinyTrain {
  out: string;
  steps: number;
  batch: number;
  saveEvery?: number;
  sampleEvery?: number;
}

/**
 * The arguments of `ddpm train` on the tiny preset and the bundled MNIST digits (the model every CLI test and fault
 * figure trains), then `extra` flags.
 */
export function tinyTrainArgs(o: TinyTrain, ...extra: string[]): string[] {
  return [
    'train',
    '--data',
    'mnist',
    '--preset',
    'tiny',
    '--steps',
    String(o.steps),
    '--batch',
    String(o.batch),
    ...(o.saveEvery === undefined ? [] : ['--save-every', String(o.saveEvery)]),
    ...(o.sampleEvery === undefined ? [] : ['--sample-every', String(o.sampleEvery)]),
    '--out',
    o.out,
    ...extra,
  ];
}

/** [width, height] of a PNG below `cwd`. */
export async function pngSize(cwd: string, file: string): Promise<[number | undefined, number | undefined]> {
  const m = await sharp(path.join(cwd, file)).metadata();
  return [m.width, m.height];
}
