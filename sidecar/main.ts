/**
 * The sidecar process: `node dist/sidecar.js --stdio` (JSON-RPC on stdin/stdout with Content-Length framing) or
 * `--node-ipc` (when started by vscode-languageclient with TransportKind.ipc). Options: `--backend NAME` (default
 * from DDPM_BACKEND, else auto); `--native-path DIR` (repeatable; also DDPM_NATIVE_PATH, path-delimited): folders
 * whose node_modules may hold @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (DDPM: Install CUDA Backend puts
 * them in the extension's storage). stdout belongs to the protocol: everything else goes to stderr.
 *
 * `node sidecar.js --probe [--backend NAME] [--native-path DIR]` instead initialises the backend, runs one small
 * computation, prints one JSON line ({ ok, backend, device, module, attempts } or { ok: false, error, attempts })
 * and exits: the install command uses it to check a freshly installed native backend in a process of its own.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import {
  createMessageConnection,
  IPCMessageReader,
  IPCMessageWriter,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import { BACKEND_NAMES, BackendUnavailableError, initBackend, shutdownBackend, type BackendChoice } from './backend.ts';
import { guardFraming } from './framing.ts';
import { registerHandlers } from './server.ts';

// Any stray console.log (from a dependency) would corrupt the protocol stream.
console.log = (...args: unknown[]) => console.error(...args);

let args: { backend: string; nativePaths: string[]; probe: boolean; stdio: boolean; ipc: boolean };
try {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: process.env.DDPM_BACKEND ?? 'auto' },
      'native-path': { type: 'string', multiple: true, default: [] },
      probe: { type: 'boolean', default: false },
      stdio: { type: 'boolean', default: false },
      'node-ipc': { type: 'boolean', default: false },
      // vscode-languageclient adds --clientProcessId=PID to a server's arguments.
      clientProcessId: { type: 'string' },
    },
  });
  args = {
    backend: values.backend,
    nativePaths: values['native-path'],
    probe: values.probe,
    stdio: values.stdio,
    ipc: values['node-ipc'],
  };
} catch (e) {
  console.error(`ddpm sidecar: ${(e as Error).message}`);
  process.exit(2);
}
const backendArg = args.backend;
if (backendArg !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(backendArg)) {
  console.error(`ddpm sidecar: unknown backend '${backendArg}' (auto, ${BACKEND_NAMES.join(', ')})`);
  process.exit(2);
}
// DDPM_NATIVE_PATH is added by initBackend itself.
const nativeSearchPaths = args.nativePaths;
const ipc = args.ipc;
if (args.probe) {
  void probe();
} else if (!ipc && !args.stdio) {
  console.error(
    'usage: node sidecar.js --stdio | --node-ipc | --probe [--backend auto|tensorflow|webgpu|wasm|cpu] [--native-path DIR]',
  );
  process.exit(2);
} else {
  serve();
}

async function probe(): Promise<void> {
  let line: object;
  try {
    const report = await initBackend(backendArg as BackendChoice, { nativeSearchPaths });
    // One real computation, read back: a backend that loads but cannot compute must not pass.
    const product = tf.tidy(() => tf.sum(tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]))));
    const value = (await product.data())[0];
    product.dispose();
    if (value !== 64 * 64 * 64) throw new Error(`a 64×64 matrix product summed to ${value}, not ${64 ** 3}`);
    line = {
      ok: true,
      backend: report.name,
      device: report.device,
      module: report.module ?? null,
      attempts: report.attempts,
    };
    await shutdownBackend();
  } catch (e) {
    line = {
      ok: false,
      error: e instanceof Error ? e.message : String(e),
      attempts: e instanceof BackendUnavailableError ? e.attempts : [],
    };
  }
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(0));
}

function serve(): void {
  const connection = ipc
    ? createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process))
    : createMessageConnection(
        // A header that breaks the framing cannot be recovered from (framing.ts): exit, saying why.
        new StreamMessageReader(
          guardFraming(process.stdin, (why) => {
            console.error(`ddpm sidecar: ${why}; exiting`);
            void exit(1);
          }),
        ),
        new StreamMessageWriter(process.stdout),
      );

  const server = registerHandlers(connection, { backend: backendArg as BackendChoice, nativeSearchPaths });
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
  connection.onRequest('initialize', () => ({
    capabilities: {},
    serverInfo: { name: 'ddpm-sidecar', version: '0.1.0' },
  }));
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
}
