// The command line's terminal conventions: the progress bar (a terminal) and plain lines (a log), colour and NO_COLOR,
// "did you mean", and the filter that keeps Dawn's native log out of stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { barText, colorEnabled, paint, progressBar, type TextStream } from '../../sidecar/cliProgress.ts';
import { NativeLogFilter } from '../../sidecar/cliNativeLog.ts';
import { suggestion } from '../../sidecar/cliFlags.ts';
import { evaluateProgressPrinter, stepProgressPrinter } from '../../sidecar/cliTerminal.ts';
import { CLI_BUNDLE } from '../helpers/cli.ts';
import { repoRoot } from '../helpers/paths.ts';

function recorder(isTTY: boolean, columns?: number): TextStream & { text: string } {
  const s = { isTTY, columns, text: '', write: (t: string) => (s.text += t) };
  return s;
}

test('the bar: 24 cells, rounded, clamped', () => {
  assert.equal(barText(0, 10), `[${'-'.repeat(24)}]`);
  assert.equal(barText(5, 10), `[${'#'.repeat(12)}${'-'.repeat(12)}]`);
  assert.equal(barText(1, 3), `[${'#'.repeat(8)}${'-'.repeat(16)}]`);
  assert.equal(barText(12, 10), `[${'#'.repeat(24)}]`);
  assert.equal(barText(0, 0), `[${'-'.repeat(24)}]`);
});

test('on a terminal the bar is redrawn in place, padded over a longer line, and its line ended when done', () => {
  const s = recorder(true);
  const bar = progressBar(s);
  bar.update(1, 4, 'step 1/4  loss 0.1234');
  bar.update(2, 4, 'step 2/4');
  bar.update(4, 4, 'step 4/4  done');
  assert.equal(
    s.text,
    `\r${barText(1, 4)} step 1/4  loss 0.1234` +
      `\r${barText(2, 4)} step 2/4${' '.repeat('  loss 0.1234'.length)}` +
      `\r${barText(4, 4)} step 4/4  done\n`,
  );
  assert.equal(s.text.split('\n').length, 2, 'one line in all');
});

test('on a terminal the line is cut to the width, so that it never wraps', () => {
  const s = recorder(true, 40);
  progressBar(s).update(1, 2, 'x'.repeat(100));
  assert.equal(s.text.length, 1 + 39);
});

test('in a log: the first line, then one line per interval, and always the last', () => {
  let clock = 0;
  const s = recorder(false);
  const bar = progressBar(s, { intervalMs: 5000, now: () => clock });
  for (let step = 1; step <= 100; step++) {
    clock = step * 200; // 5 steps a second: a line every 25 steps
    bar.update(step, 100, `step ${step}/100`);
  }
  const lines = s.text.trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => l.replace(/^\[[#-]+\] /, '')),
    ['step 1/100', 'step 26/100', 'step 51/100', 'step 76/100', 'step 100/100'],
  );
  assert.ok(!s.text.includes('\r'), 'no carriage returns in a log');
  assert.ok(!s.text.includes('\x1b'), 'no escape sequences in a log');
});

test('sampling progress: the rate and the time left count from the first update', () => {
  let clock = 1000;
  const s = recorder(false);
  const p = stepProgressPrinter('DDIM steps', s, () => clock);
  p(1, 11);
  clock += 2000;
  p(11, 11);
  assert.deepEqual(s.text.trimEnd().split('\n'), [
    `${barText(1, 11)} 1/11 DDIM steps  ?/s  ETA ?`,
    `${barText(11, 11)} 11/11 DDIM steps  5.0/s  ETA 0m00s`,
  ]);
});

test('evaluation progress: each stage has its own bar and unit', () => {
  const s = recorder(false);
  const p = evaluateProgressPrinter(s);
  p({ stage: 'bpd', done: 10, total: 10 });
  p({ stage: 'quality', done: 5, total: 5 });
  const lines = s.text.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /10\/10 forward passes/);
  assert.match(lines[1], /5\/5 sampler steps \(quality\)/);
});

test('colour: NO_COLOR (non-empty) wins, FORCE_COLOR forces, else a terminal that is not dumb', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  assert.equal(colorEnabled(tty, {}), true);
  assert.equal(colorEnabled(pipe, {}), false);
  assert.equal(colorEnabled(tty, { TERM: 'dumb' }), false);
  assert.equal(colorEnabled(tty, { NO_COLOR: '1' }), false);
  assert.equal(colorEnabled(tty, { NO_COLOR: '' }), true, 'no-color.org: an empty NO_COLOR does not count');
  assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1' }), true);
  assert.equal(colorEnabled(tty, { FORCE_COLOR: '0' }), false);
  assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' }), false);
  assert.equal(paint(true, 'red', 'x'), '\x1b[31mx\x1b[0m');
  assert.equal(paint(false, 'red', 'x'), 'x');
});

test('"did you mean": the closest name within a few edits, or a prefix; nothing for a word far from all', () => {
  const flags = ['steps', 'seed', 'sampler', 'class', 'guidance', 'no-ema', 'ema'];
  assert.equal(suggestion('stpes', flags, '--'), ", did you mean '--steps'?");
  assert.equal(suggestion('guidence', flags, '--'), ", did you mean '--guidance'?");
  assert.equal(suggestion('samp', flags, '--'), ", did you mean '--sampler'?");
  assert.equal(suggestion('bogus-flag', flags, '--'), '');
  assert.equal(suggestion('x', flags, '--'), '');
});

// What Dawn writes on a machine without Vulkan (webgpu 0.6.2 on Linux), byte for byte.
const VULKAN =
  "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory\n" +
  '    at operator() (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)\n' +
  '\n';

function filtered(chunks: string[]): string {
  const f = new NativeLogFilter();
  return chunks.map((c) => f.push(c)).join('') + f.flush();
}

test("the native log filter drops Dawn's messages, whole or in any pieces, and keeps everything else", () => {
  const ours = 'backend: wasm — WebAssembly SIMD (XNNPACK)\nwarning: 3 files skipped\n';
  assert.equal(filtered([VULKAN + ours]), ours);
  assert.equal(filtered([ours + VULKAN + ours]), ours + ours);
  const all = ours + VULKAN + 'Info: adapter found\n' + ours;
  for (let cut = 1; cut < all.length; cut += 7)
    assert.equal(filtered([all.slice(0, cut), all.slice(cut)]), ours + ours);
  assert.equal(filtered([...all]), ours + ours, 'one character at a time');
  // A Dawn error has a native frame; Node's errors have JavaScript frames (line:column) and are kept.
  const dawnError = 'Error: device lost\n    at Foo (/x/src/dawn/native/Device.cpp:12)\n\n';
  const nodeError =
    "Error: Cannot find module 'x'\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)\n";
  assert.equal(filtered([dawnError + nodeError]), nodeError);
  assert.equal(filtered(['Error: the end']), 'Error: the end');
  assert.equal(filtered(['Warning without the colon\n']), 'Warning without the colon\n');
  assert.equal(filtered(['(node:123) Warning: a node warning\n']), '(node:123) Warning: a node warning\n');
});

test('the native log filter passes a progress bar on at once, before its line ends', () => {
  const f = new NativeLogFilter();
  assert.equal(f.push('\r[##---] 1/5'), '\r[##---] 1/5');
  assert.equal(f.push('\r[####-] 4/5'), '\r[####-] 4/5');
  assert.equal(f.push('\r[#####] 5/5\n'), '\r[#####] 5/5\n');
  // The start of what may be a Dawn line waits for its end.
  assert.equal(f.push('Warn'), '');
  assert.equal(f.push("ing: Couldn't load Vulkan\n"), '');
  assert.equal(f.push('wrote s.png\n'), 'wrote s.png\n');
});

const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string })
  .version;

function ddpm(args: string[], env: NodeJS.ProcessEnv = {}) {
  assert.ok(fs.existsSync(CLI_BUNDLE), 'dist/ddpm.js is missing: run npm run build');
  const clean = { ...process.env };
  for (const k of ['NO_COLOR', 'FORCE_COLOR', 'DDPM_WEBGPU_FLAGS', 'DDPM_VERBOSE']) delete clean[k];
  const r = spawnSync(process.execPath, [CLI_BUNDLE, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...clean, ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ddpm --version, ddpm help CMD, ddpm CMD --help: stdout, exit 0; no command: the usage on stderr, exit 2', () => {
  for (const v of [ddpm(['--version']), ddpm(['-V'])]) {
    assert.equal(v.code, 0);
    assert.equal(v.stdout, `${version}\n`);
  }
  const help = ddpm(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, new RegExp(`^ddpm ${version.replace(/\./g, '\\.')}: `));
  for (const c of ['train', 'sample', 'interpolate', 'eval', 'inspect', 'export', 'info', 'model'])
    assert.match(help.stdout, new RegExp(`^  ${c} +\\S`, 'm'), `--help has no summary of ${c}`);
  assert.equal(help.stderr, '');
  assert.deepEqual(ddpm(['help']).stdout, help.stdout);
  const one = ddpm(['help', 'eval']);
  assert.equal(one.code, 0);
  assert.match(one.stdout, /^usage: ddpm eval --ckpt FILE --data /);
  assert.match(one.stdout, /bits\/dim/);
  assert.equal(ddpm(['eval', '--help']).stdout, one.stdout);
  assert.equal(ddpm(['eval', '--ckpt', 'x', '-h']).stdout, one.stdout);
  const bad = ddpm(['help', 'sampel']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command 'sampel', did you mean 'sample'\?/);
  const none = ddpm([]);
  assert.equal(none.code, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /no command given\nusage:\n {2}ddpm train /);
});

test('an unknown or misspelled flag is an error that names it (exit 2, stderr, the command usage)', () => {
  const r = ddpm(['sample', '--ckpt', 'models/mnist.safetensors', '--bogus-flag', '3']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^ddpm: unknown option '--bogus-flag'\nusage: ddpm sample --ckpt FILE/);
  const typo = ddpm(['sample', '--ckpt', 'models/mnist.safetensors', '--stpes', '3']);
  assert.match(typo.stderr, /unknown option '--stpes', did you mean '--steps'\?/);
});

test('errors are red on a forced-colour stderr, plain under NO_COLOR and in a pipe', () => {
  assert.ok(ddpm(['frobnicate'], { FORCE_COLOR: '1' }).stderr.startsWith('\x1b[31mddpm:\x1b[0m unknown command'));
  assert.match(ddpm(['frobnicate'], { FORCE_COLOR: '1', NO_COLOR: '1' }).stderr, /^ddpm: unknown command/);
  assert.match(ddpm(['frobnicate']).stderr, /^ddpm: unknown command/);
});

test("Dawn's native warnings are kept out of stderr unless --verbose; results stay on stdout", () => {
  const quiet = ddpm(['info', '--json']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /^(Warning|Info|Debug): /m);
  assert.doesNotMatch(quiet.stderr, /\.cpp:\d+\)/);
  assert.equal(JSON.parse(quiet.stdout).attempts.at(-1).ok, true);
  const verbose = ddpm(['info', '--verbose']);
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stdout, /^backend: /);
  // Here (no libvulkan) Dawn does warn: the unfiltered run shows what the filter took away.
  if (!fs.existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1') && process.platform === 'linux')
    assert.match(verbose.stderr, /Warning: Couldn't load Vulkan/);
});

test('the progress of ddpm sample: a bar redrawn in place on a terminal, plain lines in a pipe', (t) => {
  if (process.platform !== 'linux') return t.skip('needs util-linux script(1) for a pseudo-terminal');
  const args = ['sample', '--ckpt', 'models/mnist.safetensors', '--n', '1', '--steps', '4', '--backend', 'wasm'];
  const out = path.join(repoRoot, '.tmp', 'cli-progress-test.png');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const pipe = ddpm([...args, '--out', out]);
  assert.equal(pipe.code, 0, pipe.stderr);
  assert.ok(!pipe.stderr.includes('\r'));
  assert.match(pipe.stderr, /^\[#{6}-{18}\] 1\/4 DDIM steps {2}\?\/s {2}ETA \?$/m);
  assert.match(pipe.stderr, /^\[#{24}\] 4\/4 DDIM steps {2}[\d.]+\/s {2}ETA 0m00s$/m);
  // script(1) runs the command on a pseudo-terminal; -e passes its exit status on.
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const cmd = [process.execPath, CLI_BUNDLE, ...args, '--out', out].map(quote).join(' ');
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '' },
    timeout: 120_000,
  });
  assert.equal(tty.status, 0, tty.stdout);
  const screen = tty.stdout.replace(/\r\n/g, '\n');
  const redraws = screen.match(/\r\[[#-]{24}\] \d\/4 DDIM steps/g) ?? [];
  assert.equal(redraws.length, 4, screen);
  assert.ok(!screen.includes('\x1b['), 'NO_COLOR: no escape sequences on the terminal either');
  assert.match(screen, /\r\[#{24}\] 4\/4 DDIM steps [^\n]*\n[^\n]*mnist\.safetensors: step \d+/);
});
