// A minimal client of the DDPM Studio sidecar without VS Code: starts it, asks what it runs on, samples 4 images
// from a checkpoint (printing progress), and writes the grid.
//   node docs/example-client.mjs CHECKPOINT [OUT.png]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import rpc from 'vscode-jsonrpc/node.js';

const [checkpoint, out = 'samples.png'] = process.argv.slice(2);
const sidecar = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'sidecar.js');
const child = spawn(process.execPath, [sidecar, '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
const connection = rpc.createMessageConnection(
  new rpc.StreamMessageReader(child.stdout),
  new rpc.StreamMessageWriter(child.stdin),
);
connection.listen();

const info = await connection.sendRequest('ddpm/info', {});
console.log(`sidecar ${info.version} on ${info.backend.name} (${info.backend.device})`);
connection.onNotification(
  'ddpm/sampleProgress',
  (p) => p.frame || process.stdout.write(`\rstep ${p.step + 1}/${p.total} (t = ${p.t})`),
);
const result = await connection.sendRequest('ddpm/sample', { checkpoint, n: 4, sampler: 'ddim', steps: 10, seed: 0 });
fs.writeFileSync(out, Buffer.from(result.grid, 'base64'));
console.log(`\nwrote ${out} (${result.images.length} images, ${result.seconds.toFixed(1)} s)`);

await connection.sendRequest('shutdown');
await connection.sendNotification('exit');
