/**
 * "DDPM: Show Backend Info" as a document: the backend in use and its device, the threads the CPU backends use, every
 * backend that was tried and why it was passed over, and the native backend's install state with what to do next.
 * Markdown, shown in VS Code's preview. No `vscode` here: the command gathers the facts, this writes them.
 */
import type { InfoResult } from '../sidecar/protocol.ts';

export interface BackendInfoFacts {
  info: InfoResult;
  /** The ddpm.backend setting. */
  setting: string;
  /** CPU cores of the machine (the extension host runs where the sidecar does). */
  cores: number;
  /** ddpm.sampleWorkers and ddpm.train.workers: 'auto' or a number. */
  sampleWorkers: number | 'auto';
  trainWorkers: number | 'auto';
  /** The installed native backend, or null. */
  native: { package: string; version: string; device: string; dir: string; installedAt: string } | null;
  gpuMayExist: boolean;
}

/** What each backend is, in a few words. */
const BACKENDS: Record<string, string> = {
  tensorflow: 'libtensorflow through tfjs-node(-gpu): CUDA on an NVIDIA GPU, or native multithreaded CPU',
  webgpu: 'WebGPU through Dawn on a hardware GPU adapter',
  wasm: 'WebAssembly with SIMD, built in; our multithreaded training and sampling kernels',
  cpu: 'plain JavaScript (tfjs-cpu): the slow fallback',
};

/** A table cell: no line breaks, no unescaped pipes. */
const cell = (s: string) => s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');

function threads(setting: number | 'auto', cores: number, what: string): string {
  if (setting !== 'auto') return `${setting} (set)`;
  const n = Math.max(1, Math.min(cores, 8));
  return `auto: up to ${n} (one per core, at most 8) for models of 500k parameters or more, 1 for smaller ones; ${what}`;
}

export function backendInfoMarkdown(f: BackendInfoFacts): string {
  const { info } = f;
  const b = info.backend;
  const cpuBackend = b.name === 'wasm' || b.name === 'cpu';
  const lines: string[] = [];
  lines.push('# DDPM Studio — compute backend', '');
  lines.push(`**${b.name}** on **${b.device || 'unknown device'}**`, '');
  lines.push('| | |', '|---|---|');
  lines.push(`| Backend | ${cell(b.name)} — ${cell(BACKENDS[b.name] ?? '')} |`);
  lines.push(`| Device / adapter | ${cell(b.device || 'unknown')} |`);
  lines.push(`| Setting \`ddpm.backend\` | ${cell(f.setting)} |`);
  lines.push(`| CPU cores | ${f.cores} |`);
  lines.push(
    `| Sampling threads (\`ddpm.sampleWorkers\`) | ${cell(cpuBackend ? threads(f.sampleWorkers, f.cores, 'at most one per image') : `not used: ${b.name} runs on its device`)} |`,
  );
  lines.push(
    `| Training threads (\`ddpm.train.workers\`) | ${cell(cpuBackend ? threads(f.trainWorkers, f.cores, 'at most one per 2 images of the batch') : `not used: ${b.name} runs on its device`)} |`,
  );
  lines.push(
    `| Sidecar | ${cell(`version ${info.version}, protocol ${info.protocol}, Node ${info.node}, TensorFlow.js ${info.tfjs}`)} |`,
  );
  lines.push(
    `| Training | ${info.training ? cell(`job ${info.training.jobId}: step ${info.training.step} of ${info.training.steps}`) : 'no job running'} |`,
  );
  lines.push('');

  lines.push('## How it was chosen', '');
  lines.push(
    f.setting === 'auto'
      ? 'With `ddpm.backend` = `auto` the sidecar tries these in order and takes the first that works:'
      : `\`ddpm.backend\` asks for \`${f.setting}\`:`,
    '',
  );
  if (!b.attempts.length) lines.push(`- **${b.name}**: in use`);
  b.attempts.forEach((a, i) => {
    const what = a.ok ? '**in use**' : `passed over: ${a.reason ?? 'no reason given'}`;
    lines.push(`${i + 1}. **${a.name}** — ${what}${a.ok && a.reason ? ` (${a.reason})` : ''}`);
  });
  lines.push('');

  lines.push('## Native backend (libtensorflow)', '');
  if (f.native) {
    lines.push(
      `Installed: **${f.native.package} ${f.native.version}** — ${f.native.device}, in \`${f.native.dir}\`${f.native.installedAt ? ` (${f.native.installedAt})` : ''}.`,
      '',
      b.name === 'tensorflow'
        ? 'The sidecar uses it.'
        : 'The sidecar does not use it now: see the tensorflow line above for why.',
      '',
      'Remove it with **DDPM: Remove Native Backend**.',
    );
  } else {
    lines.push('Not installed.', '');
    lines.push(
      f.gpuMayExist
        ? 'This machine has an NVIDIA driver: **DDPM: Install CUDA Backend** installs libtensorflow for CUDA 11.2 / cuDNN 8.1 (or the native CPU build).'
        : 'No NVIDIA GPU was found. **DDPM: Install Native CPU Backend** installs libtensorflow for the CPU: about 2× faster training of the mnist model, 3.5× of the CIFAR-10 one, than WebAssembly on the same cores.',
    );
  }
  lines.push('');
  return lines.join('\n');
}
