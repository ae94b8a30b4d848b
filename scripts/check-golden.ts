/**
 * npm run check-golden -- FILE [--backend auto|wasm|cpu|webgpu|tensorflow] [--json]
 * Checks the engine against a golden file in the steps_small.json format, prints the worst errors per field,
 * and exits 0 only if every field is within tolerance (float32: rtol 1e-5, atol 1e-6, with the slack described in
 * scripts/golden.ts for x̂_0 near t = T; float64: rtol 1e-12).
 */
import fs from 'node:fs';
import { initBackend, shutdownBackend, type BackendChoice } from '../sidecar/backend.ts';
import { checkGolden, formatResults } from './golden.ts';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const file = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--backend');
  const backendIdx = args.indexOf('--backend');
  const backend = (backendIdx >= 0 ? args[backendIdx + 1] : 'auto') as BackendChoice;
  if (!file) {
    console.error('usage: npm run check-golden -- FILE [--backend NAME] [--json]');
    return 2;
  }
  let data: { [k: string]: unknown };
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`cannot read golden file ${file}: ${(e as Error).message}`);
    return 2;
  }
  const report = await initBackend(backend);
  const results = await checkGolden(data);
  await shutdownBackend();
  const failed = results.filter((r) => !r.ok);
  if (args.includes('--json')) {
    console.log(JSON.stringify({ file, backend: report.name, ok: failed.length === 0, results }, null, 1));
  } else {
    console.log(`golden file: ${file}\nbackend: ${report.name} (${report.device})\n`);
    console.log(formatResults(results));
    const worst = results.reduce((a, b) => (b.score > a.score ? b : a));
    console.log(
      `\n${results.length} fields checked, ${failed.length} out of tolerance; worst: ${worst.field} (err/tol ${worst.score.toFixed(3)}, rel ${worst.maxRel.toExponential(2)})`,
    );
  }
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`check-golden: ${(e as Error).message}`);
    process.exit(2);
  },
);
