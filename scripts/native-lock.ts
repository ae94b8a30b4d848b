// Regenerates extension/nativeLocks.json: the package.json and package-lock.json that DDPM: Install CUDA Backend
// installs with `npm ci` (pinned versions, each package's sha512 integrity checked by npm; nothing resolved afresh).
//
//   node --import tsx scripts/native-lock.ts        (needs the npm registry; run when NATIVE_VERSION changes)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NATIVE_PACKAGES, NATIVE_VERSION, type NativeVariant } from '../extension/nativeBackendInstaller.ts';

const out: Record<string, { package: unknown; lock: unknown }> = {};
for (const variant of Object.keys(NATIVE_PACKAGES) as NativeVariant[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddpm-native-lock-'));
  const pkg = {
    name: 'ddpm-studio-native-backend',
    private: true,
    description: 'Installed by DDPM Studio',
    dependencies: { [NATIVE_PACKAGES[variant]]: NATIVE_VERSION },
  };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: 'inherit',
  });
  const lock = JSON.parse(fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { integrity?: string }>;
  };
  const missing = Object.entries(lock.packages).filter(([k, v]) => k && !v.integrity);
  if (missing.length) throw new Error(`no integrity for ${missing.map(([k]) => k).join(', ')}`);
  out[variant] = { package: pkg, lock };
  fs.rmSync(dir, { recursive: true, force: true });
}
const file = path.join(__dirname, '..', 'extension', 'nativeLocks.json');
fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${file}`);
