import { useEffect, useState } from 'react'
import { useStore } from '../studio/store'
import { restoreFromPng, toasts } from './restore'

/**
 * App-wide: dropping a PNG anywhere that does not take images itself restores its generation parameters
 * (A1111 `parameters`, InvokeAI metadata, a ComfyUI graph) into the studio panel. Also shows the app's toasts.
 */
export function ParametersDrop(): React.JSX.Element {
  const current = useStore(toasts, (s) => s.current)
  const [over, setOver] = useState(false)

  useEffect(() => {
    const hasFiles = (e: DragEvent): boolean => Array.from(e.dataTransfer?.types ?? []).includes('Files')
    const onOver = (e: DragEvent): void => {
      if (!hasFiles(e)) return
      const taken = e.defaultPrevented // an image well under the pointer accepts it
      // Always: otherwise the browser would navigate to the dropped file.
      e.preventDefault()
      setOver(!taken)
    }
    const onLeave = (e: DragEvent): void => {
      if (e.relatedTarget === null) setOver(false)
    }
    const onDrop = (e: DragEvent): void => {
      setOver(false)
      if (e.defaultPrevented) return // an image well took it
      const files = Array.from(e.dataTransfer?.files ?? [])
      if (files.length === 0) return
      e.preventDefault()
      const png =
        files.find((f) => f.type === 'image/png' || f.name.toLowerCase().endsWith('.png')) ?? files[0]
      if (!png) return
      void png.arrayBuffer().then((b) => restoreFromPng(new Uint8Array(b), png.name || 'the dropped file'))
    }
    window.addEventListener('dragover', onOver)
    window.addEventListener('dragleave', onLeave)
    window.addEventListener('drop', onDrop)
    return () => {
      window.removeEventListener('dragover', onOver)
      window.removeEventListener('dragleave', onLeave)
      window.removeEventListener('drop', onDrop)
    }
  }, [])

  return (
    <>
      {over && <div className="drop-hint">Drop a PNG to restore its generation parameters</div>}
      {current && (
        <div
          className={`toast ${current.kind}`}
          role={current.kind === 'error' ? 'alert' : 'status'}
          data-testid="toast"
        >
          {current.text}
          <button type="button" aria-label="Dismiss" onClick={() => toasts.set({ current: undefined })}>
            ×
          </button>
        </div>
      )}
    </>
  )
}
