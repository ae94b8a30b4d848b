// The bundled `ddpm` command line (dist/ddpm.js, built by `npm run build`) run in a folder, and the size of the PNGs
// it writes there.
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { repoRoot } from './paths.ts';

export const CLI_BUNDLE = path.join(repoRoot, 'dist', 'ddpm.js');

/** A `ddpm …` runner in `cwd` (Dawn's Vulkan warnings kept out of stderr by a backend that is not there). */
export function cliIn(cwd: string) {
  return (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI_BUNDLE, ...args], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, DDPM_WEBGPU_FLAGS: 'backend=d3d12' },
      timeout: 300_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

/** [width, height] of a PNG below `cwd`. */
export async function pngSize(cwd: string, file: string): Promise<[number | undefined, number | undefined]> {
  const m = await sharp(path.join(cwd, file)).metadata();
  return [m.width, m.height];
}
