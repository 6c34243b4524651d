/**
 * Shared state of the Models section, outside React so tabs can switch without losing it: the download list
 * (kept live from `downloads:progress`), the library version (bumped on `library:changed`), the settings,
 * and a cache of images turned into blob URLs. Everything goes through api/client.
 */
import { useEffect, useState, useSyncExternalStore } from 'react'
import type { DownloadInfo, Settings } from '../../../../preload/contract'
import { api } from '../../api/client'

// ------------------------------------------------------------------------------------------ downloads

let downloads: DownloadInfo[] = []
const downloadListeners = new Set<() => void>()
let downloadsHooked = false

function setDownloads(next: DownloadInfo[]): void {
  downloads = next
  for (const fn of downloadListeners) fn()
}

export function refreshDownloads(): void {
  void api.invoke('downloads:list', {}).then((r) => {
    if (r.ok) setDownloads(r.value)
  })
}

function subscribeDownloads(fn: () => void): () => void {
  if (!downloadsHooked) {
    downloadsHooked = true
    api.on('downloads:progress', (d) => {
      const i = downloads.findIndex((x) => x.id === d.id)
      setDownloads(i < 0 ? [d, ...downloads] : downloads.map((x) => (x.id === d.id ? d : x)))
    })
    refreshDownloads()
  }
  downloadListeners.add(fn)
  return () => downloadListeners.delete(fn)
}

/** Every download, newest first, kept live. */
export function useDownloads(): DownloadInfo[] {
  return useSyncExternalStore(subscribeDownloads, () => downloads)
}

export function isActive(d: DownloadInfo): boolean {
  return (
    d.state === 'queued' ||
    d.state === 'downloading' ||
    d.state === 'verifying' ||
    (d.state === 'done' && (d.install.state === 'pending' || d.install.state === 'installing'))
  )
}

// ------------------------------------------------------------------------------------------ library

let libraryVersion = 0
const libraryListeners = new Set<() => void>()
let libraryHooked = false

function subscribeLibrary(fn: () => void): () => void {
  if (!libraryHooked) {
    libraryHooked = true
    api.on('library:changed', () => {
      libraryVersion++
      for (const l of libraryListeners) l()
    })
  }
  libraryListeners.add(fn)
  return () => libraryListeners.delete(fn)
}

/** A number that changes whenever the library does (use it as an effect dependency to reload). */
export function useLibraryVersion(): number {
  return useSyncExternalStore(subscribeLibrary, () => libraryVersion)
}

// ------------------------------------------------------------------------------------------ settings

let settings: Settings | undefined
const settingsListeners = new Set<() => void>()
let settingsHooked = false

function setSettings(s: Settings): void {
  settings = s
  for (const fn of settingsListeners) fn()
}

function subscribeSettings(fn: () => void): () => void {
  if (!settingsHooked) {
    settingsHooked = true
    api.on('settings:changed', setSettings)
    void api.invoke('settings:get', {}).then((r) => r.ok && setSettings(r.value))
  }
  settingsListeners.add(fn)
  return () => settingsListeners.delete(fn)
}

export function useSettings(): Settings | undefined {
  return useSyncExternalStore(subscribeSettings, () => settings)
}

// ------------------------------------------------------------------------------------------ images

const MAX_IMAGES = 400
const images = new Map<string, Promise<string>>()

function sniffType(b: Uint8Array): string {
  if (b[0] === 0x89 && b[1] === 0x50) return 'image/png'
  if (b[0] === 0xff && b[1] === 0xd8) return 'image/jpeg'
  if (b[0] === 0x47 && b[1] === 0x49) return 'image/gif'
  return 'image/webp'
}

function loadImage(key: string, load: () => Promise<Uint8Array>): Promise<string> {
  const hit = images.get(key)
  if (hit) {
    images.delete(key)
    images.set(key, hit)
    return hit
  }
  const p = load().then((bytes) =>
    URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type: sniffType(bytes) })),
  )
  p.catch(() => images.delete(key))
  images.set(key, p)
  while (images.size > MAX_IMAGES) {
    const [oldKey, oldUrl] = images.entries().next().value as [string, Promise<string>]
    images.delete(oldKey)
    void oldUrl.then((u) => URL.revokeObjectURL(u)).catch(() => undefined)
  }
  return p
}

async function unwrap(
  r: Promise<{ ok: true; value: Uint8Array } | { ok: false; error: { message: string } }>,
): Promise<Uint8Array> {
  const res = await r
  if (!res.ok) throw new Error(res.error.message)
  return res.value
}

export type ImageSource = { kind: 'remote'; url: string } | { kind: 'library'; id: string; version: number }

/** A blob URL for a proxied remote image or a library preview; undefined while loading or on error. */
export function useImage(src: ImageSource | null): { url?: string; failed: boolean } {
  const key = src ? (src.kind === 'remote' ? `r:${src.url}` : `l:${src.id}:${src.version}`) : null
  const [state, setState] = useState<{ key: string | null; url?: string; failed: boolean }>({
    key: null,
    failed: false,
  })
  useEffect(() => {
    if (!src || !key) return
    let live = true
    const load = (): Promise<Uint8Array> =>
      src.kind === 'remote'
        ? unwrap(api.invoke('remote:image', { url: src.url }))
        : unwrap(api.invoke('library:preview', { id: src.id }))
    loadImage(key, load).then(
      (url) => live && setState({ key, url, failed: false }),
      () => live && setState({ key, failed: true }),
    )
    return () => {
      live = false
    }
    // `key` captures everything of `src` that matters.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key])
  return state.key === key ? { url: state.url, failed: state.failed } : { failed: false }
}
