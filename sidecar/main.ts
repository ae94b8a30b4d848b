/**
 * The sidecar process: `node dist/sidecar.js --stdio` (JSON-RPC on stdin/stdout with Content-Length framing) or
 * `--node-ipc` (when started by vscode-languageclient with TransportKind.ipc). Options: `--backend NAME` (default
 * from DDPM_BACKEND, else auto). stdout belongs to the protocol: everything else goes to stderr.
 */
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { BACKEND_NAMES, shutdownBackend, type BackendChoice } from './backend.ts';
import { registerHandlers } from './server.ts';

// Any stray console.log (from a dependency) would corrupt the protocol stream.
console.log = (...args: unknown[]) => console.error(...args);

const argv = process.argv.slice(2);
const backendArg = argv.includes('--backend') ? argv[argv.indexOf('--backend') + 1] : (process.env.DDPM_BACKEND ?? 'auto');
if (backendArg !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(backendArg)) {
  console.error(`ddpm sidecar: unknown backend '${backendArg}' (auto, ${BACKEND_NAMES.join(', ')})`);
  process.exit(2);
}
const ipc = argv.includes('--node-ipc');
if (!ipc && !argv.includes('--stdio')) {
  console.error('usage: node sidecar.js --stdio | --node-ipc [--backend auto|tensorflow|webgpu|wasm|cpu]');
  process.exit(2);
}

const connection = ipc
  ? createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process))
  : createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));

const server = registerHandlers(connection, { backend: backendArg as BackendChoice });
let exiting = false;
const exit = async (code: number) => {
  if (exiting) return;
  exiting = true;
  try {
    await server.shutdown();
    await shutdownBackend();
  } finally {
    process.exit(code);
  }
};

// vscode-languageclient opens with the LSP handshake; the sidecar has no language features to announce.
connection.onRequest('initialize', () => ({ capabilities: {}, serverInfo: { name: 'ddpm-sidecar', version: '0.1.0' } }));
connection.onNotification('initialized', () => undefined);

// LSP-style lifecycle: `shutdown` stops work (a running training job saves a checkpoint), `exit` ends the process.
connection.onRequest('shutdown', async () => {
  await server.shutdown();
  return null;
});
connection.onNotification('exit', () => void exit(0));
connection.onClose(() => void exit(0));
process.on('SIGTERM', () => void exit(0));
process.on('SIGINT', () => void exit(0));
// A bug in one request must not take the process (and a training job) down with it.
process.on('unhandledRejection', (e) => console.error('ddpm sidecar: unhandled rejection:', e));
process.on('uncaughtException', (e) => console.error('ddpm sidecar: uncaught exception:', e));

connection.listen();
console.error(`ddpm sidecar: listening on ${ipc ? 'node-ipc' : 'stdio'}, backend ${backendArg}`);
