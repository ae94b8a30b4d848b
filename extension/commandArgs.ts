/**
 * What a command accepts as arguments from code. Commands are callable by any extension and by `command:` links
 * (`vscode.commands.executeCommand('ddpm.sample', {...})`), so arguments that would write or delete files, or run
 * programs, are not trusted the way a user's own choices in a dialog are:
 *
 * - Paths to write to (`saveTo` of ddpm.sample / ddpm.interpolate, `out` of ddpm.train / ddpm.resumeTraining /
 *   ddpm.importDiffusers) must lie inside an open workspace folder or the extension's global storage, where a user
 *   expects an extension to write. Anywhere else is refused with a message that says so; the interactive flows (the
 *   input box for a run folder, Save grid's dialog) still write wherever the user chooses. Symbolic links are
 *   resolved first, so a link inside the workspace cannot lead outside it.
 * - Options that exist for the extension's own tests (`packageSpec` and `env` of ddpm.installCudaBackend: what npm
 *   installs and its environment, i.e. code that runs) are refused unless the extension runs its tests
 *   (ExtensionMode.Test, or DDPM_STUDIO_TEST_HOOKS=1 in the extension host's environment when it started: the
 *   packaged-extension e2e run, where the mode is Production). The tests may also write to the OS temporary folder.
 *
 * No `vscode` import: extension.ts supplies the roots and the mode; the unit tests drive this directly.
 */
import fs from 'node:fs';
import path from 'node:path';

export class CommandArgError extends Error {
  override name = 'CommandArgError';
}

/** `p` with symbolic links resolved as far as it exists (the rest appended): where a write would really go. */
export function realTarget(p: string): string {
  const abs = path.resolve(p);
  let existing = abs;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return abs;
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/** Whether `p` (resolved) is `root` or inside it (compared case-insensitively on Windows and macOS). */
export function isInside(p: string, root: string): boolean {
  const fold = (s: string) => (process.platform === 'win32' || process.platform === 'darwin' ? s.toLowerCase() : s);
  const rel = path.relative(fold(realTarget(root)), fold(realTarget(p)));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export interface ArgPolicy {
  /** Folders a command argument may write into: the workspace folders (file scheme) and the global storage. */
  writableRoots: () => string[];
  /** Whether test-only options are accepted. */
  testHooks: boolean;
}

/**
 * Checks the path-valued `keys` of a command's options object; returns it unchanged or throws a CommandArgError that
 * names the command, the option and where it may write.
 */
export function checkWritePaths<T extends object>(
  command: string,
  opts: T,
  keys: readonly (keyof T & string)[],
  policy: ArgPolicy,
): T {
  for (const key of keys) {
    const value = opts[key] as unknown;
    if (value === undefined) continue;
    checkWritePath(command, key, value, policy);
  }
  return opts;
}

export function checkWritePath(command: string, key: string, value: unknown, policy: ArgPolicy): void {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0'))
    throw new CommandArgError(`${command}: '${key}' must be a file path`);
  if (!path.isAbsolute(value))
    throw new CommandArgError(`${command}: '${key}' must be an absolute path, got ${JSON.stringify(value)}`);
  const roots = policy.writableRoots();
  if (!roots.some((r) => isInside(value, r)))
    throw new CommandArgError(
      `${command}: '${key}' (${value}) is outside the workspace folders and the extension's storage; a command argument may ` +
        `only write there (run the command without arguments to choose any folder yourself)`,
    );
}

/** Throws unless `policy.testHooks` when any of the test-only `keys` is set. */
export function checkTestOnly<T extends object>(
  command: string,
  opts: T,
  keys: readonly (keyof T & string)[],
  policy: ArgPolicy,
): T {
  const used = keys.filter((k) => opts[k] !== undefined);
  if (used.length && !policy.testHooks)
    throw new CommandArgError(
      `${command}: ${used.map((k) => `'${k}'`).join(' and ')} ${used.length > 1 ? 'are' : 'is'} accepted only in the extension's own tests`,
    );
  return opts;
}
