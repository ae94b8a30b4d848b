'use strict';
const assert = require('assert');
const { exec, waitFor, isAlive } = require('./helpers');

suite('Sidecar crash recovery', () => {
  test('after kill -9 of the sidecar, ddpm.info works again from a new process', async () => {
    const pid = await exec('ddpm._sidecarPid');
    assert.ok(Number.isInteger(pid) && pid > 0, `pid ${JSON.stringify(pid)}`);
    process.kill(pid, 'SIGKILL');
    await waitFor(`sidecar ${pid} to exit`, () => !isAlive(pid), 10000, 50);
    const info = await exec('ddpm.info');
    assert.ok(info && typeof info.version === 'string', `ddpm.info after the kill returned ${JSON.stringify(info)}`);
    const pid2 = await exec('ddpm._sidecarPid');
    console.log(`sidecar pid ${pid} killed, restarted as ${pid2}`);
    assert.ok(Number.isInteger(pid2) && pid2 > 0, `new pid ${JSON.stringify(pid2)}`);
    assert.notStrictEqual(pid2, pid);
    assert.ok(isAlive(pid2), `new sidecar ${pid2} is alive`);
  });
});
