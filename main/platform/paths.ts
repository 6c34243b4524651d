import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** The data folder: ATELIER_HOME, else a per-OS default. Everything Atelier writes lives under it. */
export function atelierHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ATELIER_HOME) return path.resolve(env.ATELIER_HOME)
  const home = os.homedir()
  switch (process.platform) {
    case 'win32':
      return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Atelier')
    case 'darwin':
      return path.join(home, 'Library', 'Application Support', 'Atelier')
    default:
      return path.join(env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'atelier')
  }
}

export interface AppPaths {
  home: string
  settingsFile: string
  keyFile: string
  library: string
  cache: string
  conversionCache: string
  tokenizers: string
  outputs: string
  downloads: string
}

export function appPaths(home = atelierHome()): AppPaths {
  return {
    home,
    settingsFile: path.join(home, 'settings.json'),
    keyFile: path.join(home, 'secret.key'),
    library: path.join(home, 'models'),
    cache: path.join(home, 'cache'),
    conversionCache: path.join(home, 'cache', 'onnx'),
    tokenizers: path.join(home, 'cache', 'tokenizers'),
    outputs: path.join(home, 'outputs'),
    downloads: path.join(home, 'downloads'),
  }
}

/** The repository root when running from source or from out/ (used by tests and benches). */
export function repoRoot(from = import.meta.dirname): string {
  let dir = from
  for (let i = 0; i < 6; i++) {
    if (path.basename(dir) === 'main' || path.basename(dir) === 'out') return path.dirname(dir)
    dir = path.dirname(dir)
  }
  return process.cwd()
}

/**
 * A file shipped in the repository's `resources/` folder (bundled data such as the CLIP tokenizer), found
 * from source (main/...), the builds (out/main, out/cli) and a packaged app (process.resourcesPath).
 * `ATELIER_RESOURCES` overrides the folder. Returns undefined when no candidate has the file.
 */
export function resourceFile(
  rel: string,
  from = import.meta.dirname,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const candidates: string[] = []
  if (env.ATELIER_RESOURCES) candidates.push(path.resolve(env.ATELIER_RESOURCES))
  const packaged = (process as { resourcesPath?: string }).resourcesPath
  if (packaged) candidates.push(path.join(packaged, 'resources'))
  let dir = from
  for (let i = 0; i < 6; i++) {
    candidates.push(path.join(dir, 'resources'))
    const up = path.dirname(dir)
    if (up === dir) break
    dir = up
  }
  for (const c of candidates) {
    const f = path.join(c, rel)
    if (existsSync(f)) return f
  }
  return undefined
}
