// ESLint: typescript-eslint's recommended rules, a few tuned (reasons below), and the boundaries between the sides
// of the extension, which the build relies on:
//   sidecar/ddpm/**  the pure engine: imports @tensorflow/tfjs and its own files, nothing else
//   extension/**     VS Code's extension host: never TensorFlow.js, nothing of the sidecar but the protocol
//                    (sidecar/protocol.ts and the schema helpers it is built from, sidecar/validation.ts)
//   the protocol     imports zod, vscode-jsonrpc and itself only, so that the extension and the webviews that
//                    import it never pull in the sidecar's runtime (tfjs, node modules)
//   webview/**       browser scripts: no node modules, no vscode, no extension or sidecar code (type-only imports of
//                    sidecar/protocol.ts allowed)
//   sidecar/**       never vscode, nothing of extension/ or webview/
// Each boundary is two rules: @typescript-eslint/no-restricted-imports reads the specifier as written (package
// names, node builtins, type-only imports), import-x/no-restricted-paths resolves it to a file (any spelling of a
// relative path, dynamic import() and require()).
// The per-side tsconfig.json files enforce the globals (no `document` in the sidecar, no `process` in a webview).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const engineOnly = 'sidecar/ddpm/ is the pure engine: it may import @tensorflow/tfjs and files of sidecar/ddpm/ only.';
const noVscode = { name: 'vscode', message: 'Only the extension (extension/**) may use the VS Code API.' };
// import-x/no-nodejs-modules catches builtins with or without the node: prefix; this names the reason.
const noNode = {
  regex: '^node:',
  message: 'Webviews run in a browser: no node modules (the extension does the file work).',
};

/**
 * Options of import-x/no-restricted-paths: files under `target` may not import files under any of `from` (paths from
 * the repository root, whatever the working directory), but for `except[from]` (paths relative to that `from`).
 */
function zones(target, from, message, except = {}) {
  return {
    basePath: import.meta.dirname,
    zones: from.map((f) => ({ target, from: f, message, ...(f in except ? { except: except[f] } : {}) })),
  };
}

export default defineConfig(
  {
    ignores: [
      '**/node_modules/',
      'dist/',
      'out/',
      '.tsbuild/',
      '.tmp/',
      '.cache/',
      '.vscode-test/',
      'test-results/',
      'runs/',
      'models/',
      'test/fixtures/',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module', globals: { ...globals.node } },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver()] },
    rules: {
      // Unused variables are real findings, but `_`-prefixed names are the convention for deliberately unused ones
      // (arguments of a callback whose signature is fixed, destructuring that drops a key).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    // Plain JavaScript: the build script, the end-to-end harness (mocha in VS Code, Playwright), the docs' example.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { ...globals.node, ...globals.mocha } },
    rules: {
      // CommonJS is what VS Code's test runner loads (test/e2e/suite/*.js).
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['webview/**/*.{ts,js}'],
    languageOptions: { globals: { ...globals.browser, acquireVsCodeApi: 'readonly' } },
  },
  {
    // Playwright's page.evaluate() callbacks run in the page.
    files: ['test/e2e/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },

  {
    // Two type-aware rules, for the bugs that matter most in this async code (an unhandled rejection ends the
    // sidecar; an async listener's rejection goes nowhere). The rest of recommendedTypeChecked is not worth the time.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test() and describe() return promises that the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },

  // --- Boundaries ----------------------------------------------------------------------------------------------------
  {
    files: ['sidecar/ddpm/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!@tensorflow/tfjs$|\\./)', message: engineOnly }] },
      ],
      'import-x/no-restricted-paths': [
        'error',
        zones('./sidecar/ddpm', ['./sidecar', './extension', './webview', './node_modules'], engineOnly, {
          './sidecar': ['./ddpm'],
          './node_modules': ['./@tensorflow/tfjs'],
        }),
      ],
      'import-x/no-nodejs-modules': ['error'],
    },
  },
  {
    files: ['extension/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@tensorflow/*'],
              message:
                'The extension host never loads TensorFlow.js: tensors live in the sidecar (ask it over JSON-RPC).',
            },
          ],
        },
      ],
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            ...zones(
              './extension',
              ['./sidecar'],
              'The extension imports only the protocol (sidecar/protocol.ts, sidecar/validation.ts) from the sidecar; the rest runs in the sidecar process.',
              { './sidecar': ['./protocol.ts', './validation.ts', './limits.ts'] },
            ).zones,
            // The views' markup (webview/<view>/index.html) is bundled into the extension as text; their scripts
            // are separate browser bundles.
            ...zones(
              './extension',
              ['./webview/**/*.{ts,js}'],
              'The extension may import webview/shared/ (messages, pure helpers), not a view script.',
              { './webview/**/*.{ts,js}': ['**/webview/shared/**'] },
            ).zones,
          ],
        },
      ],
    },
  },
  {
    files: ['webview/**/*.{ts,js}'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [noVscode],
          patterns: [
            noNode,
            {
              regex: '(^|/)sidecar/',
              allowTypeImports: true,
              message:
                'Webviews may only `import type` from the protocol (sidecar/protocol.ts): the sidecar runs in another process.',
            },
            { group: ['@tensorflow/*'], message: 'Webviews never load TensorFlow.js.' },
          ],
        },
      ],
      'import-x/no-restricted-paths': [
        'error',
        zones(
          './webview',
          ['./sidecar', './extension'],
          'Webviews run in a browser: they talk to the extension through messages (webview/shared/messages.ts).',
          { './sidecar': ['./protocol.ts', './validation.ts', './limits.ts'] },
        ),
      ],
      'import-x/no-nodejs-modules': ['error'],
    },
  },
  {
    files: ['sidecar/**/*.ts'],
    ignores: ['sidecar/ddpm/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [noVscode, { name: 'vscode-languageclient', message: noVscode.message }] },
      ],
      'import-x/no-restricted-paths': [
        'error',
        zones(
          './sidecar',
          ['./extension', './webview'],
          'The sidecar is a separate node process: nothing of extension/ or webview/ (shared types live in sidecar/protocol.ts).',
        ),
      ],
    },
  },
  {
    files: ['sidecar/protocol.ts', 'sidecar/validation.ts', 'sidecar/limits.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!zod$|vscode-jsonrpc$|\\./(protocol|validation|limits)\\.ts$)',
              message:
                'The protocol is imported by the extension and the webviews: zod, vscode-jsonrpc and the protocol files only (a new protocol file goes into this rule, the extension zone above and the tsconfig includes).',
            },
          ],
        },
      ],
    },
  },
);
