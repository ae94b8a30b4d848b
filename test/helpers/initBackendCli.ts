// Initialises a backend in a fresh process (tfjs allows one per process) and prints the outcome as JSON.
// usage: node --import tsx initBackendCli.ts CHOICE [--native-path DIR]
import { initBackend, shutdownBackend, BackendUnavailableError, type BackendChoice } from '../../sidecar/backend.ts';

const [choice, ...rest] = process.argv.slice(2);
const i = rest.indexOf('--native-path');
const nativeSearchPaths = i >= 0 ? [rest[i + 1]] : [];
initBackend(choice as BackendChoice, { nativeSearchPaths }).then(
  async (report) => {
    await shutdownBackend();
    console.log(JSON.stringify({ ok: true, report }));
  },
  (e: Error) =>
    console.log(
      JSON.stringify({
        ok: false,
        error: e.name,
        message: e.message,
        attempts: e instanceof BackendUnavailableError ? e.attempts : [],
      }),
    ),
);
