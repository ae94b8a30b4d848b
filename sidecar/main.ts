/**
 * The sidecar process: `node dist/sidecar.js --stdio` (JSON-RPC on stdin/stdout with Content-Length framing) or
 * `--node-ipc` (when started by vscode-languageclient with TransportKind.ipc). Options: `--backend NAME` (default
 * from DDPM_BACKEND, else auto); `--native-path DIR` (repeatable; also DDPM_NATIVE_PATH, path-delimited): folders
 * whose node_modules may hold @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (DDPM: Install CUDA Backend puts
 * them in the extension's storage). stdout belongs to the protocol: everything else goes to stderr.
 *
 * `node sidecar.js --listen SOCKET [--info FILE] [--idle-exit SECONDS]` is the per-user job process (socketServer.ts):
 * JSON-RPC over a Unix socket in a private folder (or a Windows named pipe), several clients, one training job that
 * outlives them; it writes FILE (JSON: pid, socket, backend, module, build, started) while it listens and exits after SECONDS
 * (default 60) without a client or a training job.
 *
 * `node sidecar.js --probe [--backend NAME] [--native-path DIR]` instead initialises the backend, runs one small
 * computation, prints one JSON line ({ ok, backend, device, module, attempts } or { ok: false, error, attempts })
 * and exits: the install command uses it to check a freshly installed native backend in a process of its own.
 */
import fs from 'node:fs';
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
import { AlreadyListeningError, serveSocket } from './socketServer.ts';

// Any stray console.log (from a dependency) would corrupt the protocol stream.
console.log = (...args: unknown[]) => console.error(...args);

let args: {
  backend: string;
  nativePaths: string[];
  probe: boolean;
  stdio: boolean;
  ipc: boolean;
  listen?: string;
  info?: string;
  idleExit: number;
};
try {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: process.env.DDPM_BACKEND ?? 'auto' },
      'native-path': { type: 'string', multiple: true, default: [] },
      probe: { type: 'boolean', default: false },
      stdio: { type: 'boolean', default: false },
      'node-ipc': { type: 'boolean', default: false },
      listen: { type: 'string' },
      info: { type: 'string' },
      'idle-exit': { type: 'string', default: '60' },
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
    listen: values.listen,
    info: values.info,
    idleExit: Number(values['idle-exit']),
  };
  if (!(args.idleExit >= 0)) throw new Error(`--idle-exit takes a number of seconds, not '${values['idle-exit']}'`);
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
} else if (args.listen) {
  void listen(args.listen);
} else if (!ipc && !args.stdio) {
  console.error(
    'usage: node sidecar.js --stdio | --node-ipc | --listen SOCKET [--info FILE] [--idle-exit SECONDS] | --probe [--backend auto|tensorflow|webgpu|wasm|cpu] [--native-path DIR]',
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

async function listen(socket: string): Promise<void> {
  const say = (m: string) => console.error(`${new Date().toISOString()} ddpm sidecar ${process.pid}: ${m}`);
  let exiting = false;
  const exit = async (code: number, why: string) => {
    if (exiting) return;
    exiting = true;
    say(`exiting: ${why}`);
    try {
      await server?.close();
      await shutdownBackend();
      if (args.info) removeInfo(args.info);
    } finally {
      process.exit(code);
    }
  };
  let server: Awaited<ReturnType<typeof serveSocket>> | undefined;
  try {
    server = await serveSocket({
      socket,
      backend: backendArg as BackendChoice,
      nativeSearchPaths,
      idleMs: args.idleExit * 1000,
      onIdle: () => void exit(0, `no client and no training job for ${args.idleExit} s`),
      log: say,
    });
  } catch (e) {
    // Another job process already serves this socket: the client that started us connects to it.
    if (e instanceof AlreadyListeningError) {
      say(e.message);
      process.exit(0);
    }
    say(`cannot listen on ${socket}: ${(e as Error).message}`);
    process.exit(1);
  }
  if (args.info) {
    const module = process.argv[1];
    // The extension compares module and build with its own dist/sidecar.js: an updated extension gets a new process.
    const info = {
      pid: process.pid,
      socket,
      backend: backendArg,
      nativePaths: nativeSearchPaths,
      module,
      build: fs.statSync(module).mtimeMs,
      started: Date.now(),
    };
    fs.writeFileSync(args.info, `${JSON.stringify(info)}\n`, { mode: 0o600 });
  }
  // Its parent (an extension host) may go at any time: the hang-up of its terminal is not ours.
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', () => void exit(0, 'SIGTERM (a running training job saves a checkpoint first)'));
  process.on('SIGINT', () => void exit(0, 'SIGINT'));
  process.on('unhandledRejection', (e) => say(`unhandled rejection: ${String((e as Error)?.stack ?? e)}`));
  process.on('uncaughtException', (e) => say(`uncaught exception: ${e.stack ?? e.message}`));
  say(`listening on ${socket}, backend ${backendArg}, idle exit after ${args.idleExit} s`);
}

/** Removes the info file if it is still ours (a newer process may have replaced it). */
function removeInfo(file: string): void {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: number };
    if (info.pid === process.pid) fs.rmSync(file, { force: true });
  } catch {
    // gone already
  }
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
