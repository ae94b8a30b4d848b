// Backends started in a fresh process each (tfjs can initialise one backend per process): the outcome of initBackend,
// or a few training steps, read back as JSON. Used by test/unit/backend.test.ts and test/slow/backendWebgpu.test.ts.
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from './paths.ts';

export interface Outcome {
  ok: boolean;
  report?: {
    name: string;
    device: string;
    module?: string;
    attempts: { name: string; ok: boolean; reason?: string }[];
  };
  error?: string;
  message?: string;
  attempts?: { name: string; ok: boolean; reason?: string }[];
}

/** Dawn cannot find D3D12 outside Windows: a reliable "no adapter" on Linux. */
export const NO_ADAPTER = { DDPM_WEBGPU_FLAGS: 'backend=d3d12' };
/** Mesa's llvmpipe through Dawn's OpenGL ES backend: a software adapter (Debian: libegl1, libegl-mesa0, libgles2). */
export const SOFTWARE_ADAPTER = {
  DDPM_WEBGPU_FLAGS: 'backend=opengles',
  DDPM_WEBGPU_FEATURE_LEVEL: 'compatibility',
  EGL_PLATFORM: 'surfaceless',
};

/** initBackend(choice) in a child process (test/helpers/initBackendCli.ts). */
export function initInChild(choice: string, env: Record<string, string> = {}, extra: string[] = []): Outcome {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'initBackendCli.ts'), choice, ...extra],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 120_000,
    },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no outcome printed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(line) as Outcome;
}

export interface TrainStepsOutcome {
  backend: string;
  device: string;
  losses: number[];
  leaked: number;
  gpuPeakBytes: number | null;
  error?: string;
}

/** 3 training steps of the tiny preset on `backend` in a child process (test/helpers/trainStepsCli.ts). */
export function trainStepsInChild(backend: string, env: Record<string, string> = {}): TrainStepsOutcome {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'trainStepsCli.ts'), backend, '3'],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 300_000,
    },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no result (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(line) as TrainStepsOutcome;
}
