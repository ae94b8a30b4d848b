/**
 * The file on disk behind a document, for views that hand paths to the sidecar (the checkpoint inspector). Only the
 * `file` scheme has one: for git:, untitled:, vscode-vfs: and other virtual resources `uri.fsPath` is still a path,
 * but one that names another file (the working-tree copy of a git revision) or nothing at all, so reading it would
 * show the wrong thing. No `vscode` import: the unit tests call it with plain objects.
 */
export interface DocumentUri {
  scheme: string;
  fsPath: string;
  toString(): string;
}

export function documentFile(uri: DocumentUri): { file: string } | { error: string } {
  if (uri.scheme === 'file') return { file: uri.fsPath };
  return {
    error: `The checkpoint inspector reads files on disk; this document is a '${uri.scheme}:' resource (${uri.toString()}). Open the file from a folder on disk (or save a local copy) to inspect it.`,
  };
}
