// The workspace and user settings of the extension-host suites: test/e2e/run.mjs (code-server) and
// test/e2e/electron-setup.mjs (desktop VS Code through @vscode/test-cli) open the same fixtures with the same settings.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

const REPO = path.resolve(import.meta.dirname, '..', '..');

/** User settings of the test profile: no telemetry, tips, updates or marketplace, no workspace trust prompt. */
export const SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'security.workspace.trust.enabled': false,
  'window.restoreWindows': 'none',
  'git.enabled': false,
  'chat.commandCenter.enabled': false,
  // The held-out loss of DDPM: Train's runs every 10 steps (off by default), so that the Training view's plot of it is
  // exercised.
  'ddpm.train.evalEvery': 10,
  // Development aid: with DDPM_E2E_CHECKPOINT the sampling defaults use that checkpoint instead of the shipped one.
  ...(process.env.DDPM_E2E_CHECKPOINT
    ? { 'ddpm.defaultCheckpoint': path.resolve(process.env.DDPM_E2E_CHECKPOINT) }
    : {}),
};

/** Seven-segment strokes (x0, y0, x1, y1 in a 28×28 image) for each digit. */
const SEGMENTS = {
  a: [8, 5, 19, 5],
  b: [19, 5, 19, 13],
  c: [19, 14, 19, 22],
  d: [8, 22, 19, 22],
  e: [8, 14, 8, 22],
  f: [8, 5, 8, 13],
  g: [8, 13.5, 19, 13.5],
};
const DIGITS = ['abcdef', 'bc', 'abged', 'abgcd', 'fgbc', 'afgcd', 'afgedc', 'abc'];

/** A 28×28 grayscale PNG of `digit` drawn as thick, slightly slanted, anti-aliased white strokes on black. */
async function digitPng(digit) {
  const px = new Uint8Array(28 * 28);
  for (const s of DIGITS[digit]) {
    const [x0, y0, x1, y1] = SEGMENTS[s];
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const sx = x + (y - 14) * 0.15; // slant
        const dx = x1 - x0,
          dy = y1 - y0;
        const t = Math.max(0, Math.min(1, ((sx - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)));
        const d = Math.hypot(sx - (x0 + t * dx), y - (y0 + t * dy));
        px[y * 28 + x] = Math.max(px[y * 28 + x], Math.round(255 * Math.max(0, Math.min(1, 2.2 - d))));
      }
    }
  }
  return sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** A small safetensors file not written by DDPM Studio (no ddpm metadata): two F32 tensors, 9 values. */
function foreignSafetensors() {
  const header = {
    __metadata__: { source: 'ddpm-studio e2e fixture' },
    weight: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    bias: { dtype: 'F32', shape: [3], data_offsets: [24, 36] },
  };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.from(new Float32Array([0.5, -1, 2, 0.25, 3, -0.75, 0.1, 0.2, 0.3]).buffer);
  return Buffer.concat([len, Buffer.from(json), data]);
}

/**
 * Trains the `tiny` preset with the command line into outDir (no intermediate checkpoints, no previews); returns the
 * checkpoint's path. `args`: the data and the steps, and whatever else the fixture needs.
 */
function trainTinyCheckpoint(outDir, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, 'dist', 'ddpm.js'),
        'train',
        '--preset',
        'tiny',
        '--save-every',
        '0',
        '--sample-every',
        '0',
        '--out',
        outDir,
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d) => {
      err = (err + d).slice(-4000);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const latest = path.join(outDir, 'latest.safetensors');
      if (code === 0 && fs.existsSync(latest)) resolve(latest);
      else reject(new Error(`ddpm train ${args.join(' ')} (fixture) exited with ${code}:\n${err}`));
    });
  });
}

/**
 * The workspace both suites open:
 *   digits/digit-0..7.png                 fixture images (28×28, white on black)
 *   checkpoints/tiny-e2e.safetensors      a `tiny` training checkpoint (20 steps on digits/), for the inspector tests
 *   checkpoints/conditional-e2e.safetensors  a class-conditional `tiny` checkpoint (4 steps on the bundled MNIST
 *                                         digits, 10 classes), for sampling a class
 *   checkpoints/corrupt.safetensors       100 random bytes (the inspector must show an error)
 *   checkpoints/foreign.safetensors       a valid safetensors file without DDPM Studio metadata (the inspector's note)
 */
export async function makeWorkspace(dir, runDir, log = console.log) {
  fs.mkdirSync(path.join(dir, 'digits'), { recursive: true });
  for (let i = 0; i < DIGITS.length; i++)
    fs.writeFileSync(path.join(dir, 'digits', `digit-${i}.png`), await digitPng(i));
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    '# DDPM Studio e2e workspace\n\ndigits/: fixture images for folder: training.\n',
  );
  const ckpts = path.join(dir, 'checkpoints');
  fs.mkdirSync(ckpts, { recursive: true });
  let t = Date.now();
  fs.copyFileSync(
    await trainTinyCheckpoint(path.join(runDir, 'tiny-fixture'), [
      '--data',
      `folder:${path.join(dir, 'digits')}`,
      '--steps',
      '20',
      '--batch',
      '4',
    ]),
    path.join(ckpts, 'tiny-e2e.safetensors'),
  );
  log(`fixture checkpoints/tiny-e2e.safetensors trained in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  t = Date.now();
  fs.copyFileSync(
    await trainTinyCheckpoint(path.join(runDir, 'conditional-fixture'), [
      '--data',
      'mnist',
      '--conditional',
      '--steps',
      '4',
      '--batch',
      '4',
    ]),
    path.join(ckpts, 'conditional-e2e.safetensors'),
  );
  log(`fixture checkpoints/conditional-e2e.safetensors trained in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  fs.writeFileSync(path.join(ckpts, 'corrupt.safetensors'), crypto.randomBytes(100));
  fs.writeFileSync(path.join(ckpts, 'foreign.safetensors'), foreignSafetensors());
}
