'use strict';
// Small helpers shared by the extension-host tests (plain CommonJS: this runs inside VS Code's extension host).
const fs = require('fs');
const os = require('os');
const path = require('path');
const vscode = require('vscode');

const EXTENSION_ID = 'ddpm-studio.ddpm-studio';

function extension() {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext)
    throw new Error(
      `extension ${EXTENSION_ID} is not loaded (extensionDevelopmentPath wrong, or engines.vscode too new?)`,
    );
  return ext;
}

/** The workspace folder run.mjs created (it holds digits/ with the fixture PNGs). */
function workspaceRoot() {
  const folders = vscode.workspace.workspaceFolders;
  if (!folders || folders.length === 0) throw new Error('no workspace folder is open');
  return folders[0].uri.fsPath;
}

/** A fresh empty folder under the (per-run) temporary directory. */
function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ddpm-e2e-${prefix}-`));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn() until it returns a truthy value; throws with `what` after timeoutMs. */
async function waitFor(what, fn, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

/** PNG signature and IHDR: {width, height, bitDepth, colorType}. Throws when the bytes are not a PNG. */
function pngInfo(buf) {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(sig)) throw new Error('not a PNG (bad signature)');
  if (buf.toString('latin1', 12, 16) !== 'IHDR') throw new Error('PNG without IHDR as first chunk');
  if (buf.toString('latin1', buf.length - 8, buf.length - 4) !== 'IEND')
    throw new Error('PNG is truncated (no IEND at the end)');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), bitDepth: buf[24], colorType: buf[25] };
}

/** Reads a safetensors file's header: 8 bytes little-endian length N, then N bytes of JSON. */
function safetensorsHeader(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (n <= 0 || 8 + n > size) throw new Error(`bad safetensors header length ${n} (file has ${size} bytes)`);
    const json = Buffer.alloc(n);
    fs.readSync(fd, json, 0, n, 8);
    const header = JSON.parse(json.toString('utf8'));
    // Every tensor's data must lie inside the file.
    let end = 0;
    for (const [name, t] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      end = Math.max(end, t.data_offsets[1]);
    }
    if (8 + n + end !== size) throw new Error(`tensor data ends at ${8 + n + end}, file has ${size} bytes`);
    return header;
  } finally {
    fs.closeSync(fd);
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Runs a command, failing with a clear message when the extension does not register it at all. */
async function exec(command, ...args) {
  const all = await vscode.commands.getCommands(true);
  if (!all.includes(command)) throw new Error(`command ${command} is not registered`);
  return vscode.commands.executeCommand(command, ...args);
}

/** Waits until no training job runs (ddpm.info().training is empty); stops it via ddpm.stop after timeoutMs. */
async function waitTrainingIdle(timeoutMs) {
  try {
    await waitFor('the training job to end', async () => !(await exec('ddpm.info')).training, timeoutMs, 500);
  } catch (e) {
    await exec('ddpm.stop').catch(() => undefined);
    throw e;
  }
}

module.exports = {
  EXTENSION_ID,
  extension,
  workspaceRoot,
  tempDir,
  sleep,
  waitFor,
  pngInfo,
  safetensorsHeader,
  isAlive,
  exec,
  waitTrainingIdle,
};
