/**
 * Whether two paths name the same file or folder, the way the platform's default file system decides: resolved
 * against the working directory, and without regard to case on Windows (NTFS) and macOS (APFS and HFS+ as formatted by
 * default), where `C:\Runs\A` and `c:\runs\a` are one folder. extension/samePath.ts is the same rule for the extension
 * (which may not import the sidecar's modules).
 */
import path from 'node:path';

export function samePath(a: string, b: string, platform: NodeJS.Platform = process.platform): boolean {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const [x, y] = [p.resolve(a), p.resolve(b)];
  return platform === 'win32' || platform === 'darwin' ? x.toLowerCase() === y.toLowerCase() : x === y;
}
