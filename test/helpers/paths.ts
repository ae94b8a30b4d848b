// Locations shared by the tests.
import path from 'node:path';
import fs from 'node:fs';

export const repoRoot = path.resolve(__dirname, '..', '..');

/** Golden vectors computed from the paper authors' original code (see test/fixtures/golden/README.md). */
export function goldenPath(name: string): string {
  const p = path.join(repoRoot, 'test', 'fixtures', 'golden', name);
  if (!fs.existsSync(p)) throw new Error(`golden file ${name} not found in test/fixtures/golden`);
  return p;
}

export function readGolden<T = { [k: string]: unknown }>(name: string): T {
  return JSON.parse(fs.readFileSync(goldenPath(name), 'utf8')) as T;
}
