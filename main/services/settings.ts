import path from 'node:path'
import type { Settings } from '../../preload/contract-types'
import { settingsPatchSchema } from '../../preload/contract'
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
    const current = settingsPatchSchema.safeParse(this.store.get('settings') ?? {})
    this.store.set('settings', { ...(current.success ? current.data : {}), ...valid })
    const next = this.get()
    this.bus?.emit('settings:changed', next)
    return next
  }
}
