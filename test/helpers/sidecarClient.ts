// Spawns the built sidecar (dist/sidecar.js --stdio) and connects to it with vscode-jsonrpc, as any client would.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { repoRoot } from './paths.ts';

export interface Sidecar {
  connection: MessageConnection;
  child: ChildProcess;
  stderr: () => string;
  close: () => Promise<void>;
}

/** Resolves when the process has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** Closes our ends of the child's pipes, so that nothing keeps the test process alive. */
export function releasePipes(child: ChildProcess): void {
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
}

export function startSidecar(env: Record<string, string> = {}): Sidecar {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'sidecar.js'), '--stdio', '--backend', 'wasm'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!),
  );
  connection.listen();
  return {
    connection,
    child,
    stderr: () => err,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const done = exited(child);
        try {
          await connection.sendRequest('shutdown');
          await connection.sendNotification('exit');
        } catch {
          child.kill('SIGKILL');
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited(child);
        }
      }
      connection.dispose();
      releasePipes(child);
    },
  };
}
