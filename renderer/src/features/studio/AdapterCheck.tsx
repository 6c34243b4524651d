import { useEffect, useState } from 'react'
import { api } from '../../api/client'
import { familyLabel } from '../../../../preload/family-label'
import { missingForImagePrompts, missingText, setupFiles } from './image-prompt-setup'
import { useStore } from './store'
import { selectedCheckpoint, studio } from './studio-state'
import { useLibraryList } from './use-library-list'

type Install = { state: 'idle' } | { state: 'installing'; ids: string[] } | { state: 'failed'; text: string }

/**
 * Says, before any image is picked, when image prompts cannot run (no fitting IP-Adapter or no image
 * encoder in the library) and installs what is missing with one click. Renders nothing once they are there;
 * `onReady` tells the parent (Blend keeps its start button off until then).
 */
export function AdapterCheck({
  purpose,
  onReady,
  compact = false,
}: {
  purpose: string
  onReady?: (ready: boolean) => void
  /** A quiet one-liner (the panel's Image prompts box, shown to everyone) instead of a warning. */
  compact?: boolean
}): React.JSX.Element | null {
  const checkpoint = useStore(studio, selectedCheckpoint)
  const adapters = useLibraryList('ip-adapter')
  const encoders = useLibraryList('image-encoder')
  const [install, setInstall] = useState<Install>({ state: 'idle' })
  const loaded = adapters !== undefined && encoders !== undefined
  const missing = missingForImagePrompts(checkpoint?.family, adapters ?? [], encoders ?? [])
  const ready = loaded && !missing.adapter && !missing.encoder
  useEffect(() => onReady?.(ready), [ready, onReady])

  // A download that fails is reported here (its row in Models → Downloads has the details).
  const installing = install.state === 'installing' ? install.ids : undefined
  useEffect(() => {
    if (!installing) return
    return api.on('downloads:progress', (d) => {
      if (!installing.includes(d.id)) return
      const why = d.error?.message ?? (d.install.state === 'failed' ? d.install.message : null)
      if (d.state === 'failed' || d.state === 'cancelled' || d.install.state === 'failed')
        setInstall({ state: 'failed', text: `${d.label}: ${why ?? d.state}` })
    })
  }, [installing])

  if (ready && install.state === 'installing')
    return (
      <p className="hint" role="status" data-testid="adapter-ready">
        Installed: {purpose} can run now.
      </p>
    )
  if (!loaded || ready) return null
  const family = checkpoint?.family ?? null
  const files = setupFiles(family, missing)
  const start = async (): Promise<void> => {
    if (!files) return
    setInstall({ state: 'installing', ids: [] })
    const ids: string[] = []
    for (const f of files) {
      const r = await api.invoke('models:install', { source: 'huggingface', repo: f.repo, path: f.path })
      if (!r.ok) {
        setInstall({ state: 'failed', text: `${f.repo} ${f.path}: ${r.error.message}` })
        return
      }
      ids.push(...r.value.downloadIds)
    }
    setInstall({ state: 'installing', ids })
  }
  return (
    <div
      className={compact ? 'adapter-check compact' : 'adapter-check'}
      role="status"
      data-testid="adapter-check"
    >
      <p>{missingText(purpose, familyLabel(family ?? 'sd-1'), missing)}</p>
      {files ? (
        install.state === 'installing' ? (
          <p className="hint" data-testid="adapter-installing">
            Installing from Hugging Face ({files.map((f) => f.path).join(', ')})… Models → Downloads shows the
            progress; this note goes away when they are in the library.
          </p>
        ) : (
          <button type="button" data-testid="adapter-install" onClick={() => void start()}>
            Install {files.map((f) => `${f.what} (${f.size})`).join(' + ')} from {files[0]?.repo}
          </button>
        )
      ) : (
        <p className="hint">
          Install an IP-Adapter for {familyLabel(family)} and its image encoder from Models (search
          “IP-Adapter”).
        </p>
      )}
      {install.state === 'failed' && (
        <p className="message error" role="alert">
          {install.text}
        </p>
      )}
    </div>
  )
}
