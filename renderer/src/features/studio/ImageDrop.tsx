import { useEffect, useRef, useState } from 'react'
import { imageFileOf, loadImageFile, type LoadedImage } from '../../canvas-kit/image-io'

/** Open / drop / paste an image; the decoded image is handed up as bytes + element. */
export function useImageIntake(onImage: (img: LoadedImage) => void): {
  open(): void
  input: React.JSX.Element
  error?: string
  dropProps: {
    onDragOver: (e: React.DragEvent) => void
    onDragLeave: () => void
    onDrop: (e: React.DragEvent) => void
  }
  dragging: boolean
} {
  const fileRef = useRef<HTMLInputElement>(null)
  const [error, setError] = useState<string>()
  const [dragging, setDragging] = useState(false)
  const handler = useRef(onImage)
  useEffect(() => {
    handler.current = onImage
  }, [onImage])

  const take = (file: File | undefined): void => {
    if (!file) return
    loadImageFile(file).then(
      (img) => {
        setError(undefined)
        handler.current(img)
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    )
  }

  // Ctrl+V anywhere in the tab (outside text fields) pastes an image.
  useEffect(() => {
    const onPaste = (e: ClipboardEvent): void => {
      const t = e.target
      if (t instanceof HTMLElement && /^(INPUT|TEXTAREA)$/.test(t.tagName)) return
      const file = imageFileOf(e.clipboardData)
      if (!file) return
      e.preventDefault()
      loadImageFile(file).then(
        (img) => {
          setError(undefined)
          handler.current(img)
        },
        (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
      )
    }
    window.addEventListener('paste', onPaste)
    return () => window.removeEventListener('paste', onPaste)
  }, [])

  return {
    open: () => fileRef.current?.click(),
    input: (
      <input
        ref={fileRef}
        type="file"
        accept="image/png,image/jpeg,image/webp"
        hidden
        data-testid="image-file"
        onChange={(e) => {
          take(e.target.files?.[0])
          e.target.value = ''
        }}
      />
    ),
    error,
    dragging,
    dropProps: {
      onDragOver: (e) => {
        if (!Array.from(e.dataTransfer.types).includes('Files')) return
        e.preventDefault()
        setDragging(true)
      },
      onDragLeave: () => setDragging(false),
      onDrop: (e) => {
        const file = imageFileOf(e.dataTransfer)
        setDragging(false)
        if (!file) return
        // Handled here: the app-wide "restore parameters" drop stands down.
        e.preventDefault()
        take(file)
      },
    },
  }
}

/** An image well: shows the image, or invites a drop / paste / open. */
export function ImageDrop({
  image,
  onImage,
  label,
}: {
  image: LoadedImage | undefined
  onImage: (img: LoadedImage) => void
  label: string
}): React.JSX.Element {
  const intake = useImageIntake(onImage)
  return (
    <div
      className={`image-drop ${intake.dragging ? 'dragging' : ''} ${image ? 'has-image' : ''}`}
      data-testid="image-drop"
      {...intake.dropProps}
    >
      {intake.input}
      {image ? (
        <>
          <img src={image.url} alt={label} data-testid="input-image" draggable={false} />
          <div className="well-bar">
            <span>
              {image.name} · {image.width}×{image.height}
            </span>
            <button type="button" onClick={intake.open}>
              Replace…
            </button>
          </div>
        </>
      ) : (
        <div className="empty-well">
          <p>{label}</p>
          <p className="hint">Drop an image here, paste one (Ctrl+V), or</p>
          <button type="button" data-testid="open-image" onClick={intake.open}>
            Open an image…
          </button>
        </div>
      )}
      {intake.error && (
        <p className="message error" role="alert">
          {intake.error}
        </p>
      )}
    </div>
  )
}
