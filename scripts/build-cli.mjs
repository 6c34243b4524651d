// Bundles the CLI (main/cli/main.ts) for Node; dependencies stay external (native modules, sharp, ORT).
import { build } from 'esbuild'

await build({
  // the generation worker thread is its own entry (main/services/generation/worker-client.ts finds it beside the bundle)
  entryPoints: { atelier: 'main/cli/main.ts', 'generation-worker': 'main/services/generation/worker.ts' },
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
