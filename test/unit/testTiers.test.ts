// Every test file belongs to exactly one tier, so that none is silently skipped: the fast tier (`npm test` runs
// `npm run test:fast`), the slow tier (`npm run test:slow`) or the end-to-end suite (`npm run test:e2e`, whose
// extension-host runner loads test/e2e/suite/*.test.js); and `npm run test:all`, what CI runs, runs all three.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.ts';

/** What any test runner would take for a test file. */
const TEST_FILE = /\.(test|spec)\.[cm]?[jt]sx?$/;
/** Never holds the repository's own tests: dependencies, build output, caches, results. */
const SKIP_DIRS = new Set(['node_modules', 'dist', 'test-results']);

const scripts = (
  JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;

/** The file patterns a script passes to `node --test` (the shell expands them: `*` within one folder). */
function patternsOf(script: string): string[] {
  const cmd = scripts[script];
  assert.ok(cmd, `package.json has no "${script}" script`);
  return cmd.split(/\s+/).filter((w) => w.startsWith('test/'));
}

const toRegExp = (glob: string) =>
  new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);

function listFiles(dir = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (!e.name.startsWith('.') && !SKIP_DIRS.has(e.name)) out.push(...listFiles(rel));
    } else if (e.isFile()) out.push(rel);
  }
  return out;
}

const E2E_SUITE = 'test/e2e/suite/*.test.js';
const tiers: Record<string, string[]> = {
  fast: patternsOf('test:fast'),
  slow: patternsOf('test:slow'),
  e2e: [E2E_SUITE],
};

test('the scripts: npm test runs the fast tier; test:all runs it, the slow tier and the e2e suite', () => {
  assert.match(scripts.test, /npm run test:fast\b/);
  for (const step of ['npm test', 'npm run test:slow', 'npm run test:e2e'])
    assert.ok(scripts['test:all'].includes(step), `test:all does not run ${step}`);
  assert.match(scripts['test:e2e'], /node test\/e2e\/run\.mjs/);
  // The extension-host runner loads every *.test.js file next to it: what E2E_SUITE says.
  assert.match(
    fs.readFileSync(path.join(repoRoot, 'test/e2e/suite/index.js'), 'utf8'),
    /endsWith\(['"]\.test\.js['"]\)/,
  );
  assert.ok(tiers.fast.length > 0 && tiers.slow.length > 0);
});

test('every test file in the repository is in exactly one tier, and every pattern of a tier matches a file', () => {
  const files = listFiles();
  const testFiles = files.filter((f) => TEST_FILE.test(f));
  assert.ok(testFiles.length > 20, `only ${testFiles.length} test files found`);
  const problems: string[] = [];
  for (const f of testFiles) {
    const inTiers = Object.entries(tiers)
      .filter(([, globs]) => globs.some((g) => toRegExp(g).test(f)))
      .map(([name]) => name);
    if (inTiers.length === 0)
      problems.push(
        `${f} is in no tier: move it to test/unit/ (fast), test/slow/ or test/integration/ (slow), or name it *.test.ts there`,
      );
    if (inTiers.length > 1) problems.push(`${f} is in ${inTiers.length} tiers (${inTiers.join(', ')})`);
  }
  for (const [name, globs] of Object.entries(tiers)) {
    for (const g of globs)
      if (!files.some((f) => toRegExp(g).test(f))) problems.push(`the ${name} tier's pattern ${g} matches no file`);
  }
  // Any other script in the node --test tiers' folders would be skipped for its name (helpers go in test/helpers/).
  const nodeTestDirs = new Set([...tiers.fast, ...tiers.slow].map((g) => path.posix.dirname(g)));
  for (const f of files) {
    if (nodeTestDirs.has(path.posix.dirname(f)) && /\.[cm]?[jt]sx?$/.test(f) && !TEST_FILE.test(f))
      problems.push(`${f} is in a test folder but not named *.test.ts, so no tier runs it`);
  }
  assert.deepEqual(problems, []);
});
