/**
 * npm run check-import -- DIR [--backend auto|wasm|cpu|webgpu|tensorflow] [--json]
 * Imports the diffusers UNet2DModel in DIR and compares our forward pass with the outputs in DIR/io.json (main case and
 * extra_cases with their config overrides), printing the worst absolute error per case. Exit 0 when every case is
 * within tolerance.abs, 1 when one is not, 2 when the folder cannot be read or imported.
 */
import { initBackend, shutdownBackend, type BackendChoice } from '../sidecar/backend.ts';
import { checkDiffusersFolder, UnreadableError } from './diffusersIo.ts';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const dir = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--backend');
  const backendIdx = args.indexOf('--backend');
  const backend = (backendIdx >= 0 ? args[backendIdx + 1] : 'auto') as BackendChoice;
  if (!dir) {
    console.error('usage: npm run check-import -- DIR [--backend NAME] [--json]');
    return 2;
  }
  const report = await initBackend(backend);
  let results;
  try {
    results = await checkDiffusersFolder(dir);
  } catch (e) {
    if (!(e instanceof UnreadableError) && !/diffusers|config|safetensors|no such/i.test((e as Error).message)) throw e;
    console.error(`check-import: ${(e as Error).message}`);
    return 2;
  } finally {
    await shutdownBackend();
  }
  const failed = results.filter((r) => !r.ok);
  if (args.includes('--json')) {
    console.log(JSON.stringify({ dir, backend: report.name, ok: failed.length === 0, results }, null, 1));
  } else {
    console.log(`diffusers model: ${dir}\nbackend: ${report.name} (${report.device})\n`);
    for (const r of results)
      console.log(
        `${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(24)} max |Δ| ${r.maxAbs.toExponential(2)} (at ${r.worstIndex}), mean ${r.meanAbs.toExponential(2)}, tolerance ${r.tolerance.toExponential(0)}${r.headDim ? `, heads of ${r.headDim} channels` : ', one head'}`,
      );
    console.log(`\n${results.length} case(s), ${failed.length} out of tolerance`);
  }
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`check-import: ${(e as Error).message}`);
    process.exit(2);
  },
);
