import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import reactHooks from 'eslint-plugin-react-hooks'
import globals from 'globals'
import { createNodeResolver, importX } from 'eslint-plugin-import-x'
import { DOOR_EXCEPTIONS, doorZones, layerZones } from './scripts/layers.js'

const electronOnly = [
  'main/index.ts',
  'main/app/**',
  'main/ipc/**',
  'preload/index.ts',
  'e2e/specs/electron/**',
]

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'test-results/**', 'playwright-report/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Layering: services and everything below them run in plain Node; only the Electron doors may import it.
    files: ['main/**/*.ts', 'bench/**/*.ts', 'e2e/**/*.ts'],
    ignores: electronOnly,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'Only main/index.ts, main/app/ and main/ipc/ may import electron.' },
          ],
          patterns: [{ group: ['electron/*'], message: 'Only the Electron doors may import electron.' }],
        },
      ],
    },
  },
  {
    // No import cycles anywhere (type-only imports are erased and do not count). Paths are resolved like Node
    // resolves them, so `export ... from` and dynamic imports count too.
    files: ['**/*.ts', '**/*.tsx'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.tsx', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js', '.json'] })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    // Layers (design.md): doors (ipc/, server/, cli/, app/) -> services/ -> engine/, library/, downloads/ ->
    // remote/, model-formats/, platform/. Nothing imports upwards, engine and library never import each other,
    // a door never reaches below services/ (scripts/layers.js has the zones).
    files: ['main/**/*.ts'],
    rules: { 'import-x/no-restricted-paths': ['error', { zones: layerZones({ tests: false }) }] },
  },
  {
    // Tests may also drive the CLI door end to end (runCli); everything else holds for them too.
    files: ['main/**/*.test.ts'],
    rules: { 'import-x/no-restricted-paths': ['error', { zones: layerZones({ tests: true }) }] },
  },
  {
    // Doors themselves (not their tests, which build fixtures) reach only services/ and platform/.
    files: ['main/{cli,server,ipc,app}/**/*.ts'],
    ignores: ['main/**/*.test.ts', ...DOOR_EXCEPTIONS],
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: [...layerZones({ tests: false }), ...doorZones()] }],
    },
  },
  {
    // ipcMain and webContents.send live in main/ipc/ alone.
    files: ['main/**/*.ts'],
    ignores: ['main/ipc/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "Identifier[name='ipcMain']", message: 'ipcMain is used only in main/ipc/.' },
      ],
    },
  },
  {
    // The renderer talks to main only through renderer/src/api/.
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/main/**', 'electron', 'node:*', 'fs', 'path'],
              message: 'The renderer has no Node or main access; use api/client.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['renderer/src/features/**', 'renderer/src/components/**', 'renderer/src/App.tsx'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'fetch', message: 'Use api/client.' },
        { name: 'WebSocket', message: 'Use api/client.' },
      ],
    },
  },
)
