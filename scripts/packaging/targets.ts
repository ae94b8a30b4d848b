/**
 * The platforms DDPM Studio is packaged for (`vsce package --target`), and which native files each one carries:
 * Dawn (npm `webgpu`: dist/<dir>/dawn.node, on Windows with its DirectX shader compilers; one universal binary for
 * both Macs) and sharp (its @img/sharp-<platform> addon and, except on Windows where the addon folder holds the DLLs,
 * @img/sharp-libvips-<platform>).
 */
import type { Arch, BinaryFormat } from './nativeBinary.ts';

export interface Target {
  /** vsce's --target. */
  target: string;
  /** npm's --os, --cpu and --libc for installing the target's optional native packages. */
  os: 'linux' | 'darwin' | 'win32';
  cpu: 'x64' | 'arm64';
  libc?: 'glibc';
  /** The folder of node_modules/webgpu/dist/ with this target's Dawn. */
  dawnDir: string;
  /** The @img packages of sharp for this target. */
  sharp: string[];
  format: BinaryFormat;
}

const FORMAT = { linux: 'elf', darwin: 'macho', win32: 'pe' } as const;

function target(os: Target['os'], cpu: Target['cpu']): Target {
  const platform = `${os}-${cpu}`;
  return {
    target: platform,
    os,
    cpu,
    ...(os === 'linux' ? { libc: 'glibc' as const } : {}),
    dawnDir: os === 'darwin' ? 'darwin-universal' : platform,
    sharp: os === 'win32' ? [`@img/sharp-${platform}`] : [`@img/sharp-${platform}`, `@img/sharp-libvips-${platform}`],
    format: FORMAT[os],
  };
}

export const TARGETS: Target[] = [
  target('linux', 'x64'),
  target('linux', 'arm64'),
  target('darwin', 'arm64'),
  target('darwin', 'x64'),
  target('win32', 'x64'),
  target('win32', 'arm64'),
];

/** The target of the machine this runs on (what `npm run package` builds), if it is one we package. */
export function hostTarget(): Target | undefined {
  return TARGETS.find((t) => t.os === process.platform && t.cpu === (process.arch as Arch));
}

/** Every platform name that may appear in a path of a package built for another platform. */
export const ALL_PLATFORM_WORDS = [
  'linux-x64',
  'linux-arm64',
  'linux-arm',
  'linuxmusl',
  'linux-ppc64',
  'linux-s390x',
  'linux-riscv64',
  'darwin-x64',
  'darwin-arm64',
  'darwin-universal',
  'win32-x64',
  'win32-arm64',
  'win32-ia32',
  'wasm32',
];
