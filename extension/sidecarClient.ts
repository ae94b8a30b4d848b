/**
 * Starts the sidecar with vscode-languageclient (Node IPC; ELECTRON_RUN_AS_NODE so that VS Code's own executable
 * runs it as plain Node), restarts it on the next use if it died (telling the user), and stops it on deactivate.
 * Requests are typed by sidecar/protocol.ts.
 */
import * as vscode from 'vscode';
import { setting } from './settings.ts';
import { installedNativeBackend } from './nativeBackendInstaller.ts';
import {
  LanguageClient,
  TransportKind,
  type LanguageClientOptions,
  type ServerOptions,
  CloseAction,
  ErrorAction,
  State,
} from 'vscode-languageclient/node';
import type { NotificationType, RequestType, CancellationToken } from 'vscode-jsonrpc';

export class SidecarClient implements vscode.Disposable {
  private client: LanguageClient | null = null;
  private starting: Promise<LanguageClient> | null = null;
  private expectedStop = false;
  /** Subscribers per notification method: a JSON-RPC connection keeps one handler per method, so we dispatch. */
  private readonly handlers = new Map<string, Set<(p: unknown) => void>>();
  private readonly onDidDieEmitter = new vscode.EventEmitter<void>();
  /** Fires when the sidecar process went away unexpectedly (running jobs are gone). */
  readonly onDidDie = this.onDidDieEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {}

  private async start(): Promise<LanguageClient> {
    const module = vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'sidecar.js').fsPath;
    const backend = setting<string>('backend');
    // A native backend installed by DDPM: Install CUDA Backend lives in the extension's global storage.
    const native = installedNativeBackend(this.context.globalStorageUri.fsPath);
    const args = ['--backend', backend, ...(native ? ['--native-path', native.dir] : [])];
    const run = {
      module,
      transport: TransportKind.ipc,
      args,
      options: { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } },
    };
    const serverOptions: ServerOptions = { run, debug: run };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: this.log,
      traceOutputChannel: this.log,
      // We restart on demand ourselves, so that a crash never loops and the user hears about it once.
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => {
          if (!this.expectedStop) {
            this.log.error('the DDPM sidecar stopped unexpectedly');
            this.onDidDieEmitter.fire();
            void vscode.window
              .showWarningMessage(
                'The DDPM sidecar stopped unexpectedly. It will restart on the next DDPM command.',
                'Open Log',
              )
              .then((a) => a && this.log.show());
          }
          this.client = null;
          return { action: CloseAction.DoNotRestart };
        },
      },
    };
    const client = new LanguageClient('ddpm', 'DDPM Sidecar', serverOptions, clientOptions);
    await client.start();
    for (const method of this.handlers.keys()) this.listen(client, method);
    this.client = client;
    this.log.info(
      `sidecar started (backend setting: ${backend}${native ? `; native backend ${native.package} in ${native.dir}` : ''})`,
    );
    return client;
  }

  /** The running client, started if needed (and restarted if it died). */
  async ready(): Promise<LanguageClient> {
    if (this.client && this.client.state === State.Running) return this.client;
    if (!this.starting) {
      this.expectedStop = false;
      this.starting = this.start().finally(() => (this.starting = null));
    }
    return this.starting;
  }

  async request<P, R>(type: RequestType<P, R, void>, params: P, token?: CancellationToken): Promise<R> {
    const client = await this.ready();
    return client.sendRequest(type, params, token);
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

  /** The sidecar's process id (tests use it to kill the process). */
  pid(): number | null {
    const c = this.client as unknown as { _serverProcess?: { pid?: number } } | null;
    return c?._serverProcess?.pid ?? null;
  }

  async stop(): Promise<void> {
    this.expectedStop = true;
    const c = this.client;
    this.client = null;
    if (c) await c.stop(10_000).catch(() => undefined);
  }

  dispose(): void {
    void this.stop();
    this.onDidDieEmitter.dispose();
  }
}
