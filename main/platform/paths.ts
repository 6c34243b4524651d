import { existsSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** The app's name as Electron knows it (package.json `name`): Electron's userData folder is named after it. */
export const APP_NAME = 'atelier'

/** The machine facts the data folder depends on (tests pass temp folders). */
export interface DataFolderHost {
  env: NodeJS.ProcessEnv
  platform: NodeJS.Platform
  homedir: string
}

const thisHost = (env: NodeJS.ProcessEnv = process.env): DataFolderHost => ({
  env,
  platform: process.platform,
  homedir: os.homedir(),
})

/**
 * Electron's `userData` folder for this app, computed in plain Node: `%APPDATA%\atelier`,
 * `~/Library/Application Support/atelier`, `$XDG_CONFIG_HOME/atelier` (default `~/.config/atelier`). The desktop
 * app and the CLI both default to it.
 */
export function appDataFolder(host: DataFolderHost = thisHost()): string {
  const { env, homedir } = host
  switch (host.platform) {
    case 'win32':
      return path.join(env.APPDATA ?? path.join(homedir, 'AppData', 'Roaming'), APP_NAME)
    case 'darwin':
      return path.join(homedir, 'Library', 'Application Support', APP_NAME)
    default:
      return path.join(env.XDG_CONFIG_HOME || path.join(homedir, '.config'), APP_NAME)
  }
}

/** Where the CLI and `atelier serve` kept their data before they shared the desktop app's folder. */
export function formerDataFolder(host: DataFolderHost = thisHost()): string {
  const { env, homedir } = host
  switch (host.platform) {
    case 'win32':
      return path.join(env.APPDATA ?? path.join(homedir, 'AppData', 'Roaming'), 'Atelier')
    case 'darwin':
      return path.join(homedir, 'Library', 'Application Support', 'Atelier')
    default:
      return path.join(env.XDG_DATA_HOME || path.join(homedir, '.local', 'share'), 'atelier')
  }
}

/** Files and folders only Atelier writes (Electron's own Cache, Local Storage… in userData do not count). */
const ATELIER_ENTRIES = [
  'settings.json',
  'secret.key',
  'library.json',
  'library-roots.json',
  'models',
  'outputs',
  'downloads',
]

/** Whether `dir` holds anything Atelier wrote (settings, keys, the library, outputs, downloads). */
export function holdsAtelierData(dir: string): boolean {
  return ATELIER_ENTRIES.some((e) => existsSync(path.join(dir, e)))
}

/** Same path, or the same folder under two spellings (macOS and Windows file names ignore case). */
function sameFolder(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true
  try {
    const sa = statSync(a)
    const sb = statSync(b)
    return sa.dev === sb.dev && sa.ino === sb.ino
  } catch {
    return false
  }
}

export interface DataFolderChoice {
  /** The data folder to use. */
  home: string
  /** Why: ATELIER_HOME, the shared default, or the former CLI folder adopted because only it holds data. */
  reason: 'env' | 'default' | 'adopted'
  /** The other location when it also holds data that this choice leaves unused. */
  unused?: string
}

/**
 * The data folder of the desktop app, `atelier serve` and the CLI: ATELIER_HOME when set; else the desktop app's
 * folder (appDataFolder). When only the former CLI folder holds Atelier data, that folder is adopted in place
 * (nothing is moved: a library of many gigabytes may live there, and its settings may name paths inside it), so
 * the app and the CLI still share one folder.
 */
export function chooseDataFolder(host: DataFolderHost = thisHost()): DataFolderChoice {
  if (host.env.ATELIER_HOME) return { home: path.resolve(host.env.ATELIER_HOME), reason: 'env' }
  const shared = appDataFolder(host)
  const former = formerDataFolder(host)
  if (sameFolder(former, shared)) return { home: shared, reason: 'default' }
  if (holdsAtelierData(shared))
    return { home: shared, reason: 'default', ...(holdsAtelierData(former) ? { unused: former } : {}) }
  if (holdsAtelierData(former)) return { home: former, reason: 'adopted' }
  return { home: shared, reason: 'default' }
}

/** The data folder (chooseDataFolder). Everything Atelier writes lives under it. */
export function atelierHome(env: NodeJS.ProcessEnv = process.env): string {
  return chooseDataFolder(thisHost(env)).home
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
