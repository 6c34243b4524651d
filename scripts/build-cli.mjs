// Bundles the CLI (main/cli/main.ts) for Node; dependencies stay external (native modules, sharp, ORT).
import { build } from 'esbuild'

await build({
  entryPoints: { atelier: 'main/cli/main.ts' },
  outdir: 'out/cli',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
})
