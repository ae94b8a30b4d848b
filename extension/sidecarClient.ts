/**
 * The extension's end of the sidecar: vscode-languageclient over the per-user job process's local socket
 * (sidecarSocket.ts). The job process is started detached when none answers (VS Code's own executable as plain Node,
 * ELECTRON_RUN_AS_NODE), so that it — and a training job — outlives a window reload or a VS Code restart; on
 * activation the extension reconnects to the one running. Deactivating disconnects; the process exits by itself once
 * it has had no client and no job for a while.
 *
 * Failures reach the user once, in words: the language client's own notifications are switched off, a sidecar that
 * goes away is reported by one notification (with what it took down and what to do), and requests it took with it
 * fail with SidecarGoneError, which commands do not report again.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import * as vscode from 'vscode';
import { setting } from './settings.ts';
import { installedNativeBackend } from './nativeBackendInstaller.ts';
import {
  connectSocket,
  ensurePrivateDir,
  isAlive,
  readInfo,
  sidecarPaths,
  tail,
  type SidecarPaths,
} from './sidecarSocket.ts';
import {
  LanguageClient,
  type LanguageClientOptions,
  CloseAction,
  ErrorAction,
  State,
} from 'vscode-languageclient/node';
import {
  ErrorCodes as RpcErrorCodes,
  type NotificationType,
  type RequestType,
  type CancellationToken,
} from 'vscode-jsonrpc';
import { TrainRunRequest } from '../sidecar/protocol.ts';

/** A request that the sidecar took with it when it went away; the user has been told already (onDidDie). */
export class SidecarGoneError extends Error {
  override name = 'SidecarGoneError';
  constructor() {
    super('the DDPM sidecar stopped unexpectedly');
  }
}

/** What a part of the extension lost when the sidecar went away, in words, and what the user can do about it. */
export interface DeathReport {
  detail: string;
  actions?: { title: string; run: () => unknown }[];
}

/** Seconds the job process waits without a client or a job before it exits (DDPM_SIDECAR_IDLE_EXIT for tests). */
const IDLE_EXIT_S = Number(process.env.DDPM_SIDECAR_IDLE_EXIT) || 60;
/** How long a freshly started job process gets to listen. */
const START_TIMEOUT_MS = 20_000;
/** sidecar.log is started afresh beyond this size. */
const MAX_LOG_BYTES = 4 * 2 ** 20;

export class SidecarClient implements vscode.Disposable {
  private client: LanguageClient | null = null;
  private starting: Promise<LanguageClient | null> | null = null;
  private expectedStop = false;
  /** Bumped each time the connection goes: a request that began on an older one failed because of it. */
  private generation = 0;
  private readonly paths: SidecarPaths = sidecarPaths();
  /** Subscribers per notification method: a JSON-RPC connection keeps one handler per method, so we dispatch. */
  private readonly handlers = new Map<string, Set<(p: unknown) => void>>();
  private readonly reporters = new Set<() => DeathReport | undefined>();
  private readonly onDidDieEmitter = new vscode.EventEmitter<void>();
  /** Fires when the sidecar went away unexpectedly (its jobs are gone). */
  readonly onDidDie = this.onDidDieEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {}

  /** The arguments of the job process this window wants: a different backend setting means a different process. */
  private wanted() {
    const module = vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'sidecar.js').fsPath;
    const backend = setting<string>('backend');
    // A native backend installed by DDPM: Install CUDA Backend lives in the extension's global storage.
    const native = installedNativeBackend(this.context.globalStorageUri.fsPath);
    return { module, backend, native, nativePaths: native ? [native.dir] : [] };
  }

  /** Whether the running process is what this window would start (same code, same backend and native paths). */
  private matches(): boolean {
    const info = readInfo(this.paths.info);
    if (!info) return true;
    const differs = this.differences(info);
    if (differs) this.log.info(`the running DDPM sidecar ${info.pid} differs from this window's: ${differs}`);
    return !differs;
  }

  /** What differs between the running process and the one this window would start, in words ('' if nothing). */
  private differences(info: NonNullable<ReturnType<typeof readInfo>>): string {
    const w = this.wanted();
    let build: number;
    try {
      build = fs.statSync(w.module).mtimeMs;
    } catch {
      return '';
    }
    return [
      info.module !== w.module ? `code ${info.module}, not ${w.module}` : '',
      info.build !== build ? `built ${new Date(info.build).toISOString()}, not ${new Date(build).toISOString()}` : '',
      info.backend !== w.backend ? `backend ${info.backend}, not ${w.backend}` : '',
      JSON.stringify(info.nativePaths ?? []) !== JSON.stringify(w.nativePaths) ? 'other native backend folders' : '',
    ]
      .filter(Boolean)
      .join('; ');
  }

  /** Starts a detached job process and waits until it listens. */
  private async spawnProcess(): Promise<void> {
    const w = this.wanted();
    ensurePrivateDir(this.paths.dir);
    try {
      if (fs.statSync(this.paths.log).size > MAX_LOG_BYTES) fs.rmSync(this.paths.log, { force: true });
    } catch {
      // no log yet
    }
    const out = fs.openSync(this.paths.log, 'a', 0o600);
    const args = [
      w.module,
      '--listen',
      this.paths.socket,
      '--info',
      this.paths.info,
      '--idle-exit',
      String(IDLE_EXIT_S),
      '--backend',
      w.backend,
      ...w.nativePaths.flatMap((p) => ['--native-path', p]),
    ];
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    fs.closeSync(out);
    let exited: string | null = null;
    child.once('exit', (code, signal) => (exited = signal ?? `code ${code}`));
    child.once('error', (e) => (exited = e.message));
    child.unref();
    this.log.info(
      `started the DDPM sidecar (pid ${child.pid}; backend setting ${w.backend}${w.native ? `; native backend ${w.native.package} in ${w.native.dir}` : ''}); its log: ${this.paths.log}`,
    );
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const s = await connectSocket(this.paths.socket, 500);
      if (s) {
        s.destroy();
        return;
      }
      // Exit code 0: another window's process won the race to listen; its socket answers on the next try.
      if (exited !== null && exited !== 'code 0')
        throw new Error(`the DDPM sidecar exited at start (${exited}): ${tail(this.paths.log, 5)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the DDPM sidecar did not listen within ${START_TIMEOUT_MS / 1000} s (log: ${this.paths.log})`);
  }

  /** Stops an idle job process of another build or backend, so that the next start gets this window's. */
  private async replaceIfStale(client: LanguageClient): Promise<LanguageClient | null> {
    if (this.matches()) return client;
    const live = await client.sendRequest(TrainRunRequest, {}).catch(() => null);
    const info = readInfo(this.paths.info);
    if (live || !info) {
      if (live) this.log.warn('the running DDPM sidecar is of another build or backend; kept while it trains');
      return client;
    }
    this.log.info(`stopping the idle DDPM sidecar ${info.pid} (another build or backend than this window's)`);
    this.expectedStop = true;
    await client.stop(2000).catch(() => undefined);
    this.client = null;
    try {
      process.kill(info.pid, 'SIGTERM');
    } catch {
      // gone already
    }
    const deadline = Date.now() + 10_000;
    while (isAlive(info.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    this.expectedStop = false;
    return null;
  }

  private async connect(spawnIfNone: boolean): Promise<LanguageClient | null> {
    if (process.platform !== 'win32') ensurePrivateDir(this.paths.dir);
    let socket = await connectSocket(this.paths.socket);
    if (!socket) {
      if (!spawnIfNone) return null;
      await this.spawnProcess();
      socket = await connectSocket(this.paths.socket);
      if (!socket) throw new Error(`the DDPM sidecar does not answer on ${this.paths.socket}`);
    }
    const client = await this.startClient(socket);
    const kept = await this.replaceIfStale(client);
    if (kept || !spawnIfNone) return kept;
    return this.connect(true);
  }

  private async startClient(socket: import('node:net').Socket): Promise<LanguageClient> {
    const generation = this.generation;
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: this.log,
      traceOutputChannel: this.log,
      // Nothing of the language client's own reaches the user: we report a lost sidecar once, ourselves.
      errorHandler: {
        error: (e) => {
          this.log.error(`sidecar connection: ${e.message}`);
          return { action: ErrorAction.Continue, handled: true };
        },
        closed: () => {
          if (generation === this.generation) this.lost();
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new LanguageClient(
      'ddpm',
      'DDPM Sidecar',
      () => Promise.resolve({ reader: socket, writer: socket, detached: true }),
      clientOptions,
    );
    await client.start();
    for (const method of this.handlers.keys()) this.listen(client, method);
    this.client = client;
    const info = readInfo(this.paths.info);
    this.log.info(`connected to the DDPM sidecar${info ? ` (pid ${info.pid})` : ''} on ${this.paths.socket}`);
    return client;
  }

  /** The connection went away. Unless we closed it, the process died: say so once, with what it took down. */
  private lost(): void {
    this.generation++;
    this.client = null;
    if (this.expectedStop) return;
    const info = readInfo(this.paths.info);
    const pid = info?.pid;
    this.log.error(`the DDPM sidecar${pid ? ` (pid ${pid})` : ''} stopped unexpectedly; its log ends:`);
    const lines = tail(this.paths.log, 15);
    if (lines) this.log.error(lines);
    const reports = [...this.reporters].map((r) => r()).filter((r): r is DeathReport => r !== undefined);
    this.onDidDieEmitter.fire();
    const actions = reports.flatMap((r) => r.actions ?? []);
    const text = [
      'The DDPM sidecar stopped unexpectedly.',
      ...reports.map((r) => r.detail),
      'It starts again with the next DDPM command.',
    ].join(' ');
    void vscode.window.showErrorMessage(text, ...actions.map((a) => a.title), 'Open Log').then((choice) => {
      if (choice === 'Open Log') this.log.show();
      else actions.find((a) => a.title === choice)?.run();
    });
  }

  /**
   * Adds what a part of the extension lost to the one notification of a lost sidecar (called when it happens; return
   * undefined when it lost nothing).
   */
  onDeathReport(report: () => DeathReport | undefined): vscode.Disposable {
    this.reporters.add(report);
    return new vscode.Disposable(() => this.reporters.delete(report));
  }

  private begin(spawnIfNone: boolean): Promise<LanguageClient | null> {
    this.expectedStop = false;
    const p = this.connect(spawnIfNone).finally(() => {
      if (this.starting === p) this.starting = null;
    });
    this.starting = p;
    return p;
  }

  /** The running client: connected (starting the job process if none answers) when needed. */
  async ready(): Promise<LanguageClient> {
    if (this.client && this.client.state === State.Running) return this.client;
    // A connection under way (an attach that may find nothing, or another request's start) first.
    if (this.starting) {
      const c = await this.starting.catch(() => null);
      if (c && c.state === State.Running) return c;
    }
    const c = await (this.starting ?? this.begin(true));
    if (!c) throw new Error('the DDPM sidecar could not be reached');
    return c;
  }

  /** Connects to a job process that already runs (after a reload); false when none answers. Starts nothing. */
  async attach(): Promise<boolean> {
    if (this.client && this.client.state === State.Running) return true;
    const c = await (this.starting ?? this.begin(false)).catch((e: unknown) => {
      this.log.warn(`could not reach a running DDPM sidecar: ${(e as Error).message}`);
      return null;
    });
    return c !== null && c.state === State.Running;
  }

  get connected(): boolean {
    return this.client?.state === State.Running;
  }

  async request<P, R>(type: RequestType<P, R, void>, params: P, token?: CancellationToken): Promise<R> {
    const client = await this.ready();
    const generation = this.generation;
    try {
      return await client.sendRequest(type, params, token);
    } catch (e) {
      // The connection went during the request (the process died): the user hears of it once, from lost().
      const code = (e as { code?: unknown }).code;
      const gone =
        generation !== this.generation ||
        code === RpcErrorCodes.PendingResponseRejected ||
        code === RpcErrorCodes.ConnectionInactive;
      if (gone && !this.expectedStop) throw new SidecarGoneError();
      throw e;
    }
  }

  private listen(client: LanguageClient, method: string): void {
    client.onNotification(method, (p: unknown) => {
      for (const h of [...(this.handlers.get(method) ?? [])]) {
        try {
          h(p);
        } catch (e) {
          this.log.error(`handler of ${method} failed: ${(e as Error).message}`);
        }
      }
    });
  }

  onNotification<P>(type: NotificationType<P>, handler: (p: P) => void): vscode.Disposable {
    let set = this.handlers.get(type.method);
    if (!set) {
      set = new Set();
      this.handlers.set(type.method, set);
      if (this.client) this.listen(this.client, type.method);
    }
    const h = handler as (p: unknown) => void;
    set.add(h);
    return new vscode.Disposable(() => set.delete(h));
  }

  /** The job process's id, from its sidecar.json (tests use it to kill the process). */
  pid(): number | null {
    const info = readInfo(this.paths.info);
    return info && isAlive(info.pid) ? info.pid : null;
  }

  /** Disconnects; the job process goes on (it exits by itself once idle). */
  async stop(): Promise<void> {
    this.expectedStop = true;
    const c = this.client;
    this.client = null;
    if (c) await c.stop(5_000).catch(() => undefined);
  }

  dispose(): void {
    void this.stop();
    this.onDidDieEmitter.dispose();
  }
}
