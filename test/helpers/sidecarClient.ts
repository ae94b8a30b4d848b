// Spawns the built sidecar (dist/sidecar.js --stdio) and connects to it with vscode-jsonrpc, as any client would.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { repoRoot } from './paths.ts';

export interface Sidecar {
  connection: MessageConnection;
  child: ChildProcess;
  stderr: () => string;
  close: () => Promise<void>;
}

export function startSidecar(env: Record<string, string> = {}): Sidecar {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'sidecar.js'), '--stdio', '--backend', 'wasm'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  connection.listen();
  return {
    connection,
    child,
    stderr: () => err,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        try {
          await connection.sendRequest('shutdown');
          await connection.sendNotification('exit');
        } catch {
          child.kill('SIGKILL');
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      connection.dispose();
    },
  };
}
