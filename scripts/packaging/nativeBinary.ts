/**
 * What machine a native file is for, from its header: ELF (Linux), Mach-O thin or universal (macOS) and PE/COFF
 * (Windows), each with the architectures it holds. Used to check that a platform package carries only its own
 * platform's binaries. References: the System V ABI (ELF e_machine), <mach-o/loader.h> and <mach-o/fat.h>, and the
 * PE format (IMAGE_FILE_MACHINE_*).
 */

export type BinaryFormat = 'elf' | 'macho' | 'pe';
export type Arch = 'x64' | 'arm64' | 'ia32' | 'arm' | 'other';

export interface BinaryInfo {
  format: BinaryFormat;
  /** One architecture, or several for a universal (fat) Mach-O. */
  archs: Arch[];
}

// ELF e_machine.
const ELF_MACHINE: Record<number, Arch> = { 0x3e: 'x64', 0xb7: 'arm64', 0x03: 'ia32', 0x28: 'arm' };
// Mach-O cputype (CPU_ARCH_ABI64 = 0x01000000).
const MACHO_CPU: Record<number, Arch> = { 0x01000007: 'x64', 0x0100000c: 'arm64', 0x07: 'ia32', 0x0c: 'arm' };
// PE IMAGE_FILE_MACHINE_*.
const PE_MACHINE: Record<number, Arch> = { 0x8664: 'x64', 0xaa64: 'arm64', 0x014c: 'ia32', 0x01c4: 'arm' };

/** The format and architectures of a native binary, or null when `b` (its first 4 KiB suffice) is not one. */
export function binaryInfo(b: Buffer): BinaryInfo | null {
  if (b.length < 64) return null;
  // ELF: 0x7f 'E' 'L' 'F', EI_DATA at 5 (1 little-endian, 2 big), e_machine at 0x12.
  if (b.readUInt32BE(0) === 0x7f454c46) {
    const machine = b[5] === 2 ? b.readUInt16BE(0x12) : b.readUInt16LE(0x12);
    return { format: 'elf', archs: [ELF_MACHINE[machine] ?? 'other'] };
  }
  // Thin Mach-O: MH_MAGIC(_64) as written by a little-endian machine (0xfeedface/0xfeedfacf read little-endian).
  const le = b.readUInt32LE(0);
  if (le === 0xfeedfacf || le === 0xfeedface)
    return { format: 'macho', archs: [MACHO_CPU[b.readInt32LE(4)] ?? 'other'] };
  // Universal Mach-O: FAT_MAGIC (0xcafebabe) or FAT_MAGIC_64, big-endian; nfat_arch entries of 20 (32) bytes whose
  // first field is the cputype. Java class files share 0xcafebabe: their next word is a version, far above 30.
  const be = b.readUInt32BE(0);
  if (be === 0xcafebabe || be === 0xcafebabf) {
    const n = b.readUInt32BE(4);
    if (n === 0 || n > 30) return null;
    const size = be === 0xcafebabe ? 20 : 32;
    const archs = Array.from({ length: n }, (_, i) => MACHO_CPU[b.readInt32BE(8 + i * size)] ?? 'other');
    return { format: 'macho', archs };
  }
  // PE: 'MZ', e_lfanew at 0x3c, 'PE\0\0' there, then the COFF header's Machine.
  if (b.readUInt16LE(0) === 0x5a4d) {
    const pe = b.readUInt32LE(0x3c);
    if (pe + 6 > b.length || b.readUInt32LE(pe) !== 0x00004550) return null;
    return { format: 'pe', archs: [PE_MACHINE[b.readUInt16LE(pe + 4)] ?? 'other'] };
  }
  return null;
}
