import fs from 'node:fs'
import path from 'node:path'
import type { Settings } from '../../preload/contract-types'
import { settingsPatchSchema } from '../../preload/contract'
import { AppError } from './errors'
import type { EventBus } from './events'
import type { KeyValueStore } from './store'

export const DEFAULT_CIVITAI_URL = 'https://civitai.com'
export const DEFAULT_HF_URL = 'https://huggingface.co'

/** Settings with defaults; env variables (ATELIER_CIVITAI_URL, ATELIER_HF_URL) override the stored values. */
export class SettingsService {
  constructor(
    private readonly store: KeyValueStore,
    private readonly home: string,
    private readonly bus?: EventBus,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  defaults(): Settings {
    return {
      civitaiBaseUrl: DEFAULT_CIVITAI_URL,
      hfBaseUrl: DEFAULT_HF_URL,
      libraryRoot: path.join(this.home, 'models'),
      extraLibraryRoots: [],
      concurrentDownloads: 2,
      nsfw: 'hide',
      executionProvider: 'auto',
      computePrecision: 'fp16',
    }
  }

  get(): Settings {
    const stored = settingsPatchSchema.safeParse(this.store.get('settings') ?? {})
    const merged: Settings = { ...this.defaults(), ...(stored.success ? stored.data : {}) }
    if (this.env.ATELIER_CIVITAI_URL) merged.civitaiBaseUrl = this.env.ATELIER_CIVITAI_URL
    if (this.env.ATELIER_HF_URL) merged.hfBaseUrl = this.env.ATELIER_HF_URL
    return merged
  }

  update(patch: Partial<Settings>): Settings {
    const valid = settingsPatchSchema.parse(patch)
    if (valid.libraryRoot !== undefined) valid.libraryRoot = usableFolder(valid.libraryRoot)
    const current = settingsPatchSchema.safeParse(this.store.get('settings') ?? {})
    this.store.set('settings', { ...(current.success ? current.data : {}), ...valid })
    const next = this.get()
    this.bus?.emit('settings:changed', next)
    return next
  }
}

/**
 * The library folder must be a folder Atelier can write: an absolute path that exists or can be created. Checked
 * when the setting is saved, so a typo is refused where it is typed instead of failing at the first download.
 */
export function usableFolder(input: string): string {
  const folder = input.trim()
  const refuse = (why: string): never => {
    throw new AppError('invalid-input', `The library folder “${folder}” can't be used: ${why}`)
  }
  if (!folder || !path.isAbsolute(folder)) refuse('write a full path, such as /home/you/models.')
  try {
    makeFolders(folder)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    refuse(
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied.'
        : `it can't be created (${code ?? 'error'}).`,
    )
  }
  if (!fs.statSync(folder).isDirectory()) refuse('it is a file, not a folder.')
  try {
    fs.accessSync(folder, fs.constants.W_OK)
  } catch {
    refuse('it is not writable.')
  }
  return path.resolve(folder)
}

/**
 * `mkdir -p` one level at a time. Node's own recursive mkdirSync never returns for some paths (under /proc it
 * retries ENOENT forever), so each missing level is created on its own and the first failure is thrown.
 */
function makeFolders(folder: string): void {
  const missing: string[] = []
  let at = path.resolve(folder)
  while (!fs.existsSync(at)) {
    missing.unshift(at)
    const parent = path.dirname(at)
    if (parent === at) break
    at = parent
  }
  for (const dir of missing) fs.mkdirSync(dir)
}
