// The checkpoint inspector reads only documents on disk (issue 16): for other schemes fsPath names another file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { documentFile } from '../../extension/documentFile.ts';

const uri = (scheme: string, fsPath: string) => ({ scheme, fsPath, toString: () => `${scheme}:${fsPath}` });

test('a file: document is its fsPath; git:, untitled: and virtual resources are refused with a message', () => {
  assert.deepEqual(documentFile(uri('file', '/w/ckpt.safetensors')), { file: '/w/ckpt.safetensors' });
  for (const scheme of ['git', 'untitled', 'vscode-vfs', 'vscode-remote', 'http']) {
    const r = documentFile(uri(scheme, '/w/ckpt.safetensors'));
    assert.ok('error' in r, scheme);
    assert.match(r.error, new RegExp(`reads files on disk; this document is a '${scheme}:' resource`));
  }
});
