/**
 * File choices as quick picks of workspace candidates with a "Browse…" entry last: images, data folders, IDX files,
 * CIFAR-10 folders. They work where a file dialog does not serve (code-server and the web pick one file per dialog;
 * remote windows show a bare file system), and the dialog stays one entry away. The candidates come from
 * workspace.findFiles (which honours files.exclude and search.exclude) and are sorted by ./workspaceCandidates.ts.
 */
import fs from 'node:fs';
import * as vscode from 'vscode';
import {
  checkpointCandidates,
  cifarCandidates,
  diffusersCandidates,
  EXCLUDE_GLOB,
  IMAGE_EXTENSIONS,
  IMAGE_GLOB,
  idxCandidates,
  imageCandidates,
  imageFolderCandidates,
  type Candidate,
} from './workspaceCandidates.ts';

/** How many files a listing reads at most: enough for any pick, bounded for a workspace of datasets. */
const LIMIT = 5000;

type Item = vscode.QuickPickItem & { file?: string; browse?: true };

/**
 * The candidates of each workspace folder (a multi-root workspace lists each folder's files under it), in the
 * folders' order; in a multi-root workspace each description starts with its folder's name.
 */
function perFolder<T extends Candidate>(files: readonly string[], sort: (root: string, files: string[]) => T[]): T[] {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const byFolder = new Map<number, string[]>();
  for (const f of files) {
    const i = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(f))?.index ?? 0;
    byFolder.set(i, [...(byFolder.get(i) ?? []), f]);
  }
  return folders.flatMap((folder) => {
    const found = sort(folder.uri.fsPath, byFolder.get(folder.index) ?? []);
    return folders.length > 1 ? found.map((c) => ({ ...c, description: `${folder.name} · ${c.description}` })) : found;
  });
}

async function list(glob: string, limit = LIMIT): Promise<{ files: string[]; capped: boolean }> {
  if (!vscode.workspace.workspaceFolders?.length) return { files: [], capped: false };
  const uris = await vscode.workspace.findFiles(glob, EXCLUDE_GLOB, limit);
  return { files: uris.filter((u) => u.scheme === 'file').map((u) => u.fsPath), capped: uris.length >= limit };
}

export interface PickOptions {
  title: string;
  placeholder: string;
  /** The candidates (listed while the pick shows as busy). */
  candidates: () => Promise<Candidate[]>;
  /** Shown when the workspace has none. */
  empty: string;
  /** The Browse… entry's description, and its dialog. */
  browse: { description: string; dialog: vscode.OpenDialogOptions };
  /** Items offered before the workspace's (e.g. shipped models); a separator follows them. */
  first?: Item[];
  /** The candidate to focus first (its path). */
  focus?: string;
}

/**
 * What a quick pick is accepted with (the selected item, else the active one), or undefined when it is hidden first;
 * the pick is disposed then. `settled()` tells a late callback (a description, a workspace scan) that it is over.
 */
export function quickPickResult<T extends vscode.QuickPickItem>(
  qp: vscode.QuickPick<T>,
): { chosen: Promise<T | undefined>; settled: () => boolean } {
  let settled = false;
  const chosen = new Promise<T | undefined>((resolve) => {
    const finish = (v: T | undefined) => {
      if (settled) return;
      settled = true;
      resolve(v);
      qp.dispose();
    };
    qp.onDidAccept(() => finish(qp.selectedItems[0] ?? qp.activeItems[0]));
    qp.onDidHide(() => finish(undefined));
  });
  return { chosen, settled: () => settled };
}

/** A quick pick of workspace candidates with Browse… last; resolves to the chosen path, or undefined if dismissed. */
export async function pickWorkspaceFile(o: PickOptions): Promise<string | undefined> {
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = o.title;
  qp.placeholder = o.placeholder;
  qp.matchOnDescription = true;
  qp.busy = true;
  const browse: Item = { label: '$(folder-opened) Browse…', description: o.browse.description, browse: true };
  const first = o.first ?? [];
  qp.items = [...first, browse];
  const { chosen } = quickPickResult(qp);
  qp.show();
  void o.candidates().then(
    (found) => {
      const items: Item[] = found.map((c) => ({ label: c.label, description: c.description, file: c.file }));
      const sep = (label: string): Item => ({ label, kind: vscode.QuickPickItemKind.Separator });
      qp.items = [
        ...first,
        ...(first.length && items.length ? [sep('workspace')] : []),
        ...items,
        sep(items.length ? '' : o.empty),
        browse,
      ];
      const focus = o.focus ? qp.items.find((i) => i.file === o.focus) : undefined;
      if (focus) qp.activeItems = [focus];
      qp.busy = false;
    },
    () => (qp.busy = false),
  );
  const pick = await chosen;
  if (!pick) return undefined;
  if (pick.file) return pick.file;
  const uris = await vscode.window.showOpenDialog({
    ...o.browse.dialog,
    canSelectMany: false,
    defaultUri: o.browse.dialog.defaultUri ?? vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return uris?.[0]?.fsPath;
}

/** An image of the workspace (or one browsed to); `exclude` is left out of the list (the image already chosen). */
export function pickImage(title: string, placeholder: string, exclude?: string): Promise<string | undefined> {
  return pickWorkspaceFile({
    title,
    placeholder,
    candidates: async () => {
      const { files } = await list(IMAGE_GLOB);
      return perFolder(files, imageCandidates).filter((c) => c.file !== exclude);
    },
    empty: 'no PNG, JPEG or WebP images in the workspace',
    browse: {
      description: 'an image anywhere',
      dialog: { canSelectFiles: true, filters: { Images: [...IMAGE_EXTENSIONS] }, title },
    },
  });
}

export type DataKind = 'folder' | 'idx' | 'cifar10';

/** A data location of the kind: a folder of images, an IDX image file or a CIFAR-10 folder, as `kind:PATH`. */
export async function pickData(kind: DataKind, title: string): Promise<string | undefined> {
  const options: Record<DataKind, Omit<PickOptions, 'title'>> = {
    folder: {
      placeholder: 'Which folder of images? (sub-folders are read too; a folder per class gives labels)',
      candidates: async () => {
        const { files, capped } = await list(IMAGE_GLOB);
        return perFolder(files, (root, f) => imageFolderCandidates(root, f, capped));
      },
      empty: 'no folder of images in the workspace',
      browse: { description: 'a folder anywhere', dialog: { canSelectFolders: true, canSelectFiles: false, title } },
    },
    idx: {
      placeholder: 'Which IDX image file? (its labels file beside it is read too)',
      candidates: async () => perFolder((await list('**/*idx3-ubyte*', 200)).files, idxCandidates),
      empty: 'no *-idx3-ubyte[.gz] file in the workspace',
      browse: { description: 'an IDX file anywhere', dialog: { canSelectFiles: true, canSelectFolders: false, title } },
    },
    cifar10: {
      placeholder: 'Which CIFAR-10 folder? (data_batch_*.bin, test_batch.bin)',
      candidates: async () => perFolder((await list('**/{data_batch_*,test_batch}.bin', 200)).files, cifarCandidates),
      empty: 'no CIFAR-10 binary batches in the workspace',
      browse: { description: 'a folder anywhere', dialog: { canSelectFolders: true, canSelectFiles: false, title } },
    },
  };
  const file = await pickWorkspaceFile({ title, ...options[kind] });
  return file === undefined ? undefined : `${kind}:${file}`;
}

/** The workspace's checkpoints, newest first (for the checkpoint pick). */
export async function workspaceCheckpoints(limit = 200): Promise<Candidate[]> {
  const { files } = await list('**/*.safetensors', limit);
  const stat = (file: string) => {
    try {
      return fs.statSync(file).mtimeMs;
    } catch {
      return 0;
    }
  };
  const mtimes = new Map(files.map((f) => [f, stat(f)]));
  const found = perFolder(files, (root, f) =>
    checkpointCandidates(
      root,
      f.map((file) => ({ file, mtime: mtimes.get(file)! })),
    ),
  );
  // Newest first across the folders (the sort is stable: a run's latest stays before its ckpt files).
  return found.sort((a, b) => b.mtime - a.mtime);
}

/** A diffusers UNet2DModel folder of the workspace (config.json and its weights), or a folder or file browsed to. */
export function pickDiffusersModel(title: string): Promise<string | undefined> {
  return pickWorkspaceFile({
    title,
    placeholder:
      'Which diffusers UNet2DModel? (a folder with config.json and diffusion_pytorch_model.safetensors or .bin)',
    candidates: async () =>
      perFolder(
        (await list('**/{config.json,diffusion_pytorch_model*.safetensors,diffusion_pytorch_model.bin}', 2000)).files,
        diffusersCandidates,
      ),
    empty: 'no diffusers model folder in the workspace',
    browse: {
      description: 'its folder or weights file anywhere',
      dialog: {
        canSelectFolders: true,
        canSelectFiles: true,
        filters: { 'diffusers weights': ['safetensors', 'bin'] },
        title,
      },
    },
  });
}
