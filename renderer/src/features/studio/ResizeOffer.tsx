import { useState } from 'react'
import { generationResize } from '../../../../preload/image-limits'
import { resizeImage } from '../../canvas-kit/image-io'
import { tooLargeText } from './input-size'
import { useStore } from './store'
import { setInput, studio, type StudioTab } from './studio-state'

/**
 * Shown over a tab's input image when it is past the generation limits (an 8000×8000 photo): the largest
 * size that fits, aspect kept, multiples of 64, applied with one click (the tab's input is replaced by the
 * resized PNG).
 */
export function ResizeOffer({ tab }: { tab: StudioTab }): React.JSX.Element | null {
  const image = useStore(studio, (s) => s.inputs[tab])
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string>()
  if (!image) return null
  const fit = generationResize(image.width, image.height)
  if (!fit) return null
  const apply = (): void => {
    setBusy(true)
    setError(undefined)
    resizeImage(image, fit.width, fit.height).then(
      (img) => {
        setBusy(false)
        setInput(tab, img)
      },
      (err: unknown) => {
        setBusy(false)
        setError(err instanceof Error ? err.message : String(err))
      },
    )
  }
  return (
    <div className="resize-offer" role="status" data-testid="resize-offer">
      <p>{tooLargeText(image.width, image.height)}</p>
      <button type="button" className="primary" data-testid="resize-apply" disabled={busy} onClick={apply}>
        {busy ? 'Resizing…' : `Resize to ${fit.width}×${fit.height}`}
      </button>
      {error && (
        <p className="message error" role="alert">
          {error}
        </p>
      )}
    </div>
  )
}
