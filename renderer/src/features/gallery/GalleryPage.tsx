import { useEffect, useState } from 'react'
import type { OutputImage } from '../../../../preload/contract-types'
import { bytesUrl, copyPng, downloadBytes } from '../../canvas-kit/image-io'
import { gallery } from '../studio/generation-adapter'
import type { RestorableParameters } from '../studio/params'
import { useStore } from '../studio/store'
import { sendTo, STUDIO_TABS, studio } from '../studio/studio-state'
import { restoreFromPng, toast } from './restore'
import { UpscaleAction } from '../upscale/UpscaleAction'
import { BlendAction } from './BlendAction'

interface Loaded {
  bytes: Uint8Array
  url: string
}

// Image bytes by gallery id, kept while the app runs (thumbnails and the open image share them).
const cache = new Map<string, Promise<Loaded | undefined>>()

function load(id: string): Promise<Loaded | undefined> {
  let p = cache.get(id)
  if (!p) {
    p = gallery
      .image(id)
      .then((r) => (r.ok ? { bytes: r.value, url: bytesUrl(r.value, 'image/png') } : undefined))
    cache.set(id, p)
  }
  return p
}

function forget(id: string): void {
  void cache.get(id)?.then((l) => l && URL.revokeObjectURL(l.url))
  cache.delete(id)
}

function useLoaded(id: string | undefined): Loaded | undefined {
  const [loaded, setLoaded] = useState<{ id: string; value: Loaded | undefined }>()
  useEffect(() => {
    if (!id) return
    let live = true
    void load(id).then((value) => live && setLoaded({ id, value }))
    return () => {
      live = false
    }
  }, [id])
  return loaded && loaded.id === id ? loaded.value : undefined
}

function Thumb({
  item,
  selected,
  onSelect,
}: {
  item: OutputImage
  selected: boolean
  onSelect: () => void
}): React.JSX.Element {
  const loaded = useLoaded(item.id)
  return (
    <button
      type="button"
      className={`thumb ${selected ? 'active' : ''}`}
      data-testid="gallery-item"
      data-id={item.id}
      title={item.fileName}
      onClick={onSelect}
    >
      {loaded ? <img src={loaded.url} alt={item.fileName} loading="lazy" /> : <span className="hint">…</span>}
    </button>
  )
}

const TAB_LABEL = { img2img: 'Img2img', inpaint: 'Inpaint', outpaint: 'Outpaint' } as const

function Details({ item, onDeleted }: { item: OutputImage; onDeleted: () => void }): React.JSX.Element {
  const loaded = useLoaded(item.id)
  const [params, setParamsText] = useState<{ id: string; value: RestorableParameters | null }>()
  useEffect(() => {
    if (!loaded) return
    let live = true
    void gallery
      .parameters(loaded.bytes)
      .then((r) => live && setParamsText({ id: item.id, value: r.ok ? r.value : null }))
    return () => {
      live = false
    }
  }, [loaded, item.id])
  const p = params?.id === item.id ? params.value : undefined
  const [zoomed, setZoomed] = useState(false)
  useEffect(() => {
    if (!zoomed) return
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'Escape') setZoomed(false)
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [zoomed])

  const remove = async (): Promise<void> => {
    if (!confirm(`Delete ${item.fileName}? The file is removed from the outputs folder.`)) return
    const r = await gallery.remove(item.id)
    if (!r.ok) return toast('error', r.error.message)
    forget(item.id)
    onDeleted()
  }

  return (
    <div className="gallery-details" data-testid="gallery-details">
      {loaded ? (
        <img
          className="gallery-open"
          src={loaded.url}
          alt={item.fileName}
          data-testid="gallery-open"
          title="Open at full size"
          onClick={() => setZoomed(true)}
        />
      ) : (
        <div className="placeholder-box">Loading…</div>
      )}
      <div className="well-bar">
        <span>
          {item.fileName} · {item.width}×{item.height} · {(item.sizeBytes / 1024).toFixed(0)} KiB ·{' '}
          {new Date(item.createdAt).toLocaleString()}
        </span>
      </div>
      <div className="actions">
        <button
          type="button"
          data-testid="gallery-restore"
          disabled={!loaded}
          onClick={() => loaded && void restoreFromPng(loaded.bytes, item.fileName)}
        >
          Restore parameters
        </button>
        {STUDIO_TABS.map((t) => (
          <button
            key={t}
            type="button"
            data-testid={`gallery-send-${t}`}
            disabled={!loaded}
            onClick={() => loaded && void sendTo(t, loaded.bytes, item.fileName)}
          >
            Send to {TAB_LABEL[t]}
          </button>
        ))}
        <button
          type="button"
          disabled={!loaded}
          onClick={() =>
            loaded &&
            void copyPng(loaded.bytes).then((ok) =>
              toast(
                ok ? 'info' : 'error',
                ok ? 'Image copied.' : 'This browser refused to copy an image; use Save as.',
              ),
            )
          }
        >
          Copy
        </button>
        <button
          type="button"
          disabled={!loaded}
          onClick={() => loaded && downloadBytes(loaded.bytes, item.fileName)}
        >
          Save as…
        </button>
        <UpscaleAction galleryId={item.id} disabled={!loaded} />
        <button type="button" className="danger" data-testid="gallery-delete" onClick={() => void remove()}>
          Delete
        </button>
      </div>
      {zoomed && loaded && (
        <div className="lightbox" role="dialog" aria-label={item.fileName} onClick={() => setZoomed(false)}>
          <img src={loaded.url} alt={item.fileName} />
        </div>
      )}
      <pre className="parameters" data-testid="gallery-parameters">
        {p === undefined
          ? 'Reading parameters…'
          : p === null || p.text === null
            ? 'No generation parameters.'
            : p.text}
      </pre>
    </div>
  )
}

export function GalleryPage(): React.JSX.Element {
  const version = useStore(studio, (s) => s.outputsVersion)
  const [items, setItems] = useState<OutputImage[]>()
  const [error, setError] = useState<string>()
  const [selected, setSelected] = useState<string>()
  const [reload, setReload] = useState(0)

  useEffect(() => {
    let live = true
    void gallery.list().then((r) => {
      if (!live) return
      if (r.ok) {
        setItems(r.value)
        setError(undefined)
      } else setError(r.error.message)
    })
    return () => {
      live = false
    }
  }, [version, reload])

  const current = items?.find((i) => i.id === selected) ?? items?.[0]
  return (
    <section className="gallery">
      <div className="gallery-grid-wrap">
        <h1>
          Gallery <span className="hint">{items ? `${items.length} image(s)` : ''}</span>
        </h1>
        {error && (
          <p className="message error" role="alert">
            {error}
          </p>
        )}
        {items && items.length === 0 && <p className="hint">Nothing yet: generated images appear here.</p>}
        <div className="gallery-grid">
          {items?.map((item) => (
            <Thumb
              key={item.id}
              item={item}
              selected={item.id === current?.id}
              onSelect={() => setSelected(item.id)}
            />
          ))}
        </div>
        <p className="hint">
          Drop any PNG with A1111, InvokeAI or ComfyUI parameters onto the window to restore its settings.
        </p>
        {items && <BlendAction items={items} />}
      </div>
      {current && (
        <Details
          key={current.id}
          item={current}
          onDeleted={() => {
            setSelected(undefined)
            setReload((n) => n + 1)
          }}
        />
      )}
    </section>
  )
}
