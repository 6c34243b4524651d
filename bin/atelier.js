#!/usr/bin/env node
// The `atelier` CLI: runs the bundle that `npm run build` writes.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
const bundle = path.join(here, '..', 'out', 'cli', 'atelier.mjs')
if (!existsSync(bundle)) {
  process.stderr.write('atelier: the CLI is not built yet; run `npm run build` first.\n')
  process.exit(1)
}
await import(pathToFileURL(bundle).href)
