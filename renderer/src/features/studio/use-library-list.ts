import { useEffect, useState } from 'react'
import type { LibraryModel } from '../../../../preload/contract'
import { api } from '../../api/client'

/**
 * Library lists of one type (IP-Adapters, image encoders), refreshed on `library:changed`; undefined until
 * the first answer (so a check does not flash "none installed" while loading).
 */
export function useLibraryList(type: 'ip-adapter' | 'image-encoder'): LibraryModel[] | undefined {
  const [list, setList] = useState<LibraryModel[]>()
  useEffect(() => {
    let live = true
    const load = (): void =>
      void api
        .invoke('library:list', { type })
        .then((r) => live && setList(r.ok ? r.value.filter((m) => !m.problem) : []))
    load()
    const off = api.on('library:changed', load)
    return () => {
      live = false
      off()
    }
  }, [type])
  return list
}
