'use strict';
// Issue 21's rough edges inside the extension host: the job log, the final training preview, Show Backend Info as a
// readable document, and the context keys the palette's when clauses read. (The pickers, the seed in the Trajectory
// view, the palette itself and the checkpoint size confirmation are driven through the workbench: ui.mjs.)
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');
const { extension, workspaceRoot, tempDir, exec, waitFor, waitTrainingIdle } = require('./helpers');

/** The job lines of the DDPM log written since `from` lines. */
async function jobLines(from = 0) {
  return (await exec('ddpm._jobLog')).slice(from);
}

/** [id, rest] of a job line: "[sample #3] started: n=2 …" → ["sample #3", "started: n=2 …"]. */
const parse = (line) => {
  const m = /^\[(\w+ #\d+)\] (.*)$/.exec(line);
  assert.ok(m, `not a job line: ${line}`);
  return [m[1], m[2]];
};

suite('Rough edges (job log, final preview, backend info, context keys)', () => {
  // Run alone (--grep), this suite may come before the extension has activated (onStartupFinished).
  suiteSetup(() => extension().activate());
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('the DDPM log records a sampling job: its parameters when it starts, its result and duration when it ends', async () => {
    const checkpoint =
      process.env.DDPM_E2E_CHECKPOINT || path.join(extension().extensionPath, 'models', 'mnist.safetensors');
    const from = (await jobLines()).length;
    const r = await exec('ddpm.sample', { checkpoint, n: 2, sampler: 'ddim', steps: 3, seed: 11 });
    assert.strictEqual(r.images, 2);
    const lines = await jobLines(from);
    console.log(lines.join('\n'));
    assert.strictEqual(lines.length, 2, `two lines: ${JSON.stringify(lines)}`);
    const [[idA, start], [idB, end]] = lines.map(parse);
    assert.strictEqual(idA, idB, 'the same job id');
    assert.match(idA, /^sample #\d+$/);
    assert.strictEqual(start, `started: checkpoint=${checkpoint} n=2 sampler="ddim 3 steps" seed=11`);
    assert.match(end, /^done after \d+\.\d s: 2 images( on \d+ threads)?$/);
  });

  test('a short training run: the log has its start and end, and a preview is drawn at its last step', async () => {
    // 3 steps with ddpm.train.sampleEvery at its default (500): before, no preview at all; now one at step 3.
    const out = tempDir('final-preview');
    const data = `folder:${path.join(workspaceRoot(), 'digits')}`;
    const from = (await jobLines()).length;
    const r = await exec('ddpm.train', { data, preset: 'tiny', steps: 3, batch: 4, out });
    assert.ok(r && r.jobId, `ddpm.train returned ${JSON.stringify(r)}`);
    await waitTrainingIdle(120_000);
    const grid = path.join(out, 'samples', 'step-0000003.png');
    await waitFor(grid, () => fs.existsSync(grid), 30_000);
    assert.deepStrictEqual(fs.readdirSync(path.join(out, 'samples')), ['step-0000003.png']);
    const lines = await waitFor(
      'the end of the training job in the log',
      async () => {
        const l = await jobLines(from);
        return l.length >= 2 ? l : null;
      },
      30_000,
    );
    console.log(lines.join('\n'));
    const [[idA, start], [idB, end]] = lines.map(parse);
    assert.strictEqual(idA, idB);
    assert.match(idA, /^train #\d+$/);
    assert.ok(start.startsWith(`started: jobId=${r.jobId} data=`), start);
    for (const part of ['preset=tiny', 'steps=3', 'batch=4', `out=${out}`, 'keep=3', 'sampleEvery=500'])
      assert.ok(start.includes(` ${part}`), `"${part}" in ${start}`);
    assert.match(end, new RegExp(`^done after \\d+\\.\\d s: step 3, ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`));
  });

  test('Show Backend Info opens a Markdown preview: backend, device, threads, every backend tried and why not', async () => {
    const info = await exec('ddpm.info');
    const shown = await exec('ddpm.showBackendInfo');
    assert.strictEqual(shown.shownAs, 'preview');
    const md = shown.markdown;
    console.log(md);
    assert.ok(md.includes(`**${info.backend.name}** on **${info.backend.device}**`), 'the headline');
    assert.match(md, /^\| CPU cores \| \d+ \|$/m);
    assert.match(md, /^\| Sampling threads \(`ddpm.sampleWorkers`\) \| auto: up to \d+/m);
    for (const [i, a] of info.backend.attempts.entries()) {
      const line = `${i + 1}. **${a.name}** — ${a.ok ? '**in use**' : `passed over: ${a.reason}`}`;
      assert.ok(md.includes(line), `the attempt line ${line}`);
    }
    assert.match(md, /^## Native backend \(libtensorflow\)\n\nNot installed\.$/m);
    const tab = await waitFor(
      'the preview tab',
      () =>
        vscode.window.tabGroups.all
          .flatMap((g) => g.tabs)
          .find((t) => t.input instanceof vscode.TabInputWebview && /DDPM Backend Info/.test(t.label)),
      20_000,
    );
    console.log(`tab: ${tab.label} (${tab.input.viewType})`);
    assert.match(tab.input.viewType, /markdown\.preview$/);
  });

  test('the context keys of the palette: no NVIDIA driver on this machine, no native backend installed', async () => {
    const keys = await exec('ddpm._contextKeys');
    const driver = ['/proc/driver/nvidia/version', '/dev/nvidiactl', '/dev/nvidia0'].some((f) => fs.existsSync(f));
    assert.deepStrictEqual(keys, { 'ddpm.gpuMayExist': driver, 'ddpm.nativeBackend': '' });
  });
});
