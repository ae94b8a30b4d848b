/**
 * The sidecar as a per-user job process (`sidecar.js --listen SOCKET`): JSON-RPC over a local socket — a Unix domain
 * socket in a private (0700, owner-checked) folder, or a named pipe on Windows — to which the extension connects, and
 * reconnects after its window reloads or VS Code restarts. It outlives the extension host so that a training job does
 * too. Each connection gets the protocol's handlers (server.ts); they share one training slot, whose notifications go
 * to every client. The process exits once it has had no client and no training job for `idleMs`.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';
import type { MessageConnection, NotificationType } from 'vscode-jsonrpc';
import { TrainingSlot } from './jobs/trainSession.ts';
import { registerHandlers, type ServerOptions } from './server.ts';

/**
 * Creates `dir` for the socket (mode 0700) or checks the one there: a directory (not a link) of this user that no one
 * else may enter. A folder of another user, or one open to others, is refused: a socket in it could be someone
 * else's. POSIX only: on Windows the socket is a named pipe and the folder holds the info file only.
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (process.platform === 'win32') return;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new Error(`${dir} belongs to another user (uid ${st.uid}, not ${uid})`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Whether something answers at `socket` (within `timeoutMs`). */
export function socketAnswers(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      c.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
  });
}

export class AlreadyListeningError extends Error {
  override name = 'AlreadyListeningError';
}

export interface SocketServerOptions extends ServerOptions {
  /** The Unix socket's path, or a Windows named pipe (\\.\pipe\…). */
  socket: string;
  /** Exit when no client and no training job has been there for this long. */
  idleMs: number;
  /** Called once when the process has been idle for idleMs. */
  onIdle: () => void;
  log: (message: string) => void;
}

export interface SocketServer {
  training: TrainingSlot;
  clients: () => number;
  /** Stops listening, closes every connection and stops the training job (saving a checkpoint). */
  close: () => Promise<void>;
}

export async function serveSocket(o: SocketServerOptions): Promise<SocketServer> {
  const pipe = o.socket.startsWith('\\\\');
  if (!pipe) {
    ensurePrivateDir(path.dirname(o.socket));
    if (fs.existsSync(o.socket)) {
      if (await socketAnswers(o.socket)) throw new AlreadyListeningError(`another sidecar listens on ${o.socket}`);
      // Left behind by a process that was killed: nobody answers on it.
      fs.rmSync(o.socket, { force: true });
    }
  }
  const training = new TrainingSlot();
  const connections = new Set<MessageConnection>();
  const broadcast = <P>(type: NotificationType<P>, params: P) => {
    for (const c of connections) void c.sendNotification(type, params).catch(() => undefined);
  };
  let idleSince = Date.now();
  const server = net.createServer((socket) => {
    const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
    const handlers = registerHandlers(connection, o, { training, broadcast });
    connection.onRequest('initialize', () => ({
      capabilities: {},
      serverInfo: { name: 'ddpm-sidecar', version: '0.1.0' },
    }));
    connection.onNotification('initialized', () => undefined);
    // A client's shutdown/exit ends its connection only: the job process and its training job go on.
    connection.onRequest('shutdown', () => null);
    connection.onNotification('exit', () => socket.end());
    let gone = false;
    const drop = () => {
      if (gone) return;
      gone = true;
      connections.delete(connection);
      handlers.dispose();
      connection.dispose();
      socket.destroy();
      if (connections.size === 0) idleSince = Date.now();
      o.log(`client disconnected (${connections.size} left)`);
    };
    connection.onClose(drop);
    socket.on('close', drop);
    socket.on('error', (e) => o.log(`client socket: ${e.message}`));
    connections.add(connection);
    connection.listen();
    o.log(`client connected (${connections.size})`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (!pipe) fs.chmodSync(o.socket, 0o600);
  server.on('error', (e) => o.log(`server: ${e.message}`));

  let wasTraining = false;
  const timer = setInterval(
    () => {
      const busy = connections.size > 0 || training.current !== null;
      if (training.current) wasTraining = true;
      else if (wasTraining) {
        // The job just ended: the idle time counts from now.
        wasTraining = false;
        idleSince = Date.now();
      }
      if (busy) return;
      if (Date.now() - idleSince >= o.idleMs) {
        clearInterval(timer);
        o.onIdle();
      }
    },
    Math.max(50, Math.min(1000, o.idleMs / 4)),
  );

  return {
    training,
    clients: () => connections.size,
    close: async () => {
      clearInterval(timer);
      server.close();
      await training.shutdown();
      for (const c of [...connections]) c.dispose();
      if (!pipe) fs.rmSync(o.socket, { force: true });
    },
  };
}
