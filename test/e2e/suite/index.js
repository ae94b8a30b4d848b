'use strict';
// Entry point of the extension-host suite: VS Code loads this file (extensionTestsPath) inside the real extension host
// and calls run(); the promise's outcome becomes the test run's exit code. Started by test/e2e/run.mjs.
//
// Besides mocha's spec output (which goes to the extension host's console) every test's outcome is written as JSON to
// $DDPM_E2E_RESULTS, which run.mjs reads to print its summary. $DDPM_E2E_GREP narrows the run to matching tests.
const path = require('path');
const fs = require('fs');
const Mocha = require('mocha');

function recordResults(runner, file) {
  const results = [];
  const started = Date.now();
  const write = (done) => {
    if (!file) return;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ done, seconds: (Date.now() - started) / 1000, results }, null, 2));
  };
  runner.on('pass', (t) => {
    results.push({ title: t.fullTitle(), state: 'passed', ms: t.duration });
    write(false);
  });
  runner.on('fail', (t, err) => {
    results.push({ title: t.fullTitle(), state: 'failed', ms: t.duration, error: String((err && err.stack) || err) });
    write(false);
  });
  runner.on('pending', (t) => {
    results.push({ title: t.fullTitle(), state: 'skipped' });
    write(false);
  });
  runner.on('end', () => write(true));
}

exports.run = function run() {
  const mocha = new Mocha({
    ui: 'tdd',
    color: false,
    reporter: 'spec',
    timeout: 180000,
    grep: process.env.DDPM_E2E_GREP || undefined,
  });
  for (const f of fs.readdirSync(__dirname).sort()) {
    if (f.endsWith('.test.js')) mocha.addFile(path.join(__dirname, f));
  }
  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) =>
        failures > 0 ? reject(new Error(`${failures} tests failed.`)) : resolve(),
      );
      recordResults(runner, process.env.DDPM_E2E_RESULTS);
    } catch (err) {
      reject(err);
    }
  });
};
