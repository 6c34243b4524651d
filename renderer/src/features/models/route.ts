/** Sub-routes of the Models section, in the hash: `#/models[/<view>[/...]][?params]`. */
import { useEffect, useState } from 'react'

export type ModelsRoute =
  /** Another section's address (the Models section is about to unmount). */
  | { view: 'elsewhere' }
  | { view: 'browse'; params: URLSearchParams }
  | { view: 'library'; params: URLSearchParams }
  | { view: 'downloads' }
  | { view: 'model'; source: 'civitai' | 'huggingface'; id: string; version: string | null }

export function parseModelsRoute(hash: string): ModelsRoute {
  const raw = hash.replace(/^#\/?/, '')
  const [pathPart = '', query = ''] = raw.split('?')
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent)
  const params = new URLSearchParams(query)
  if (parts.length === 0) return { view: 'browse', params }
  if (parts[0] !== 'models') return { view: 'elsewhere' }
  switch (parts[1]) {
    case 'library':
      return { view: 'library', params }
    case 'downloads':
      return { view: 'downloads' }
    case 'view': {
      const source = parts[2] === 'huggingface' ? 'huggingface' : 'civitai'
      const id = parts.slice(3).join('/')
      if (id) return { view: 'model', source, id, version: params.get('version') }
      return { view: 'browse', params }
    }
    default:
      return { view: 'browse', params }
  }
}

export function modelHref(source: string, id: string, version?: string | null): string {
  const path = id.split('/').map(encodeURIComponent).join('/')
  return `#/models/view/${source}/${path}${version ? `?version=${encodeURIComponent(version)}` : ''}`
}

/** Rewrite the address without a navigation, unless the user already went somewhere else. */
export function replaceModelsHash(href: string): void {
  if (location.hash === '' || location.hash.startsWith('#/models')) history.replaceState(null, '', href)
}

export function browseHref(params: Record<string, string>): string {
  const q = new URLSearchParams(params).toString()
  return `#/models/browse${q ? `?${q}` : ''}`
}

export function useModelsRoute(): ModelsRoute {
  const [hash, setHash] = useState(() => location.hash)
  useEffect(() => {
    const on = (): void => setHash(location.hash)
    window.addEventListener('hashchange', on)
    return () => window.removeEventListener('hashchange', on)
  }, [])
  return parseModelsRoute(hash)
}
