import { useCallback, useEffect, useState } from 'react'
import { snap8, zoomOutExtension, type Extension } from '../../canvas-kit/geometry'
import type { LoadedImage } from '../../canvas-kit/image-io'
import { prefillPreview } from '../../canvas-kit/prefill'
import { GenerationPanel } from './GenerationPanel'
import { ResizeOffer } from './ResizeOffer'
import { ImageDrop, useImageIntake } from './ImageDrop'
import { OutpaintCanvas } from './OutpaintCanvas'
import type { ModeInputs } from './params'
import { ResultsView } from './ResultsView'
import { useStore } from './store'
import { setInput, setParams, studio } from './studio-state'

const SIDES: (keyof Extension)[] = ['left', 'right', 'top', 'bottom']

function ExtentControls({ image }: { image: LoadedImage | undefined }): React.JSX.Element {
  const p = useStore(studio, (s) => s.params)
  const ext = p.outpaint
  const [factor, setFactor] = useState(1.5)
  const repeat = p.outpaintRepeat
  const finalW = image ? image.width + (ext.left + ext.right) * repeat : 0
  const finalH = image ? image.height + (ext.top + ext.bottom) * repeat : 0
  return (
    <fieldset className="extents">
      <legend>Extend</legend>
      <div className="grid2">
        {SIDES.map((side) => (
          <label key={side}>
            {side[0]?.toUpperCase() + side.slice(1)} (px)
            <input
              type="number"
              data-testid={`extend-${side}`}
              min={0}
              max={2048}
              step={8}
              value={ext[side]}
              onChange={(e) =>
                setParams({ outpaint: { ...ext, [side]: Math.max(0, Number(e.target.value) || 0) } })
              }
              onBlur={() => setParams({ outpaint: { ...ext, [side]: Math.min(2048, snap8(ext[side])) } })}
            />
          </label>
        ))}
      </div>
      <div className="row">
        <button
          type="button"
          data-testid="zoom-out"
          disabled={!image}
          onClick={() =>
            image && setParams({ outpaint: zoomOutExtension(image.width, image.height, factor) })
          }
        >
          Zoom out
        </button>
        <select
          value={factor}
          onChange={(e) => setFactor(Number(e.target.value))}
          aria-label="Zoom out factor"
        >
          {[1.25, 1.5, 2, 3].map((f) => (
            <option key={f} value={f}>
              ×{f}
            </option>
          ))}
        </select>
        <label className="inline">
          Repeat
          <input
            type="number"
            data-testid="outpaint-repeat"
            min={1}
            max={16}
            value={repeat}
            onChange={(e) =>
              setParams({ outpaintRepeat: Math.min(16, Math.max(1, Math.round(Number(e.target.value)))) })
            }
          />
        </label>
        <button
          type="button"
          onClick={() => setParams({ outpaint: { left: 0, right: 0, top: 0, bottom: 0 } })}
        >
          Reset
        </button>
      </div>
      {image && (
        <p className="hint" data-testid="outpaint-size">
          {image.width}×{image.height} → {finalW}×{finalH}
          {repeat > 1 ? ` after ${repeat} passes` : ''}
        </p>
      )}
      <label>
        <span className="row spread">
          <span>Overlap</span>
          <span className="num">{p.outpaintOverlap} px</span>
        </span>
        <input
          type="range"
          data-testid="outpaint-overlap"
          min={0}
          max={256}
          step={8}
          value={p.outpaintOverlap}
          onChange={(e) => setParams({ outpaintOverlap: Number(e.target.value) })}
        />
      </label>
      <label>
        <span className="row spread">
          <span>Seam blur</span>
          <span className="num">{p.seamBlur} px</span>
        </span>
        <input
          type="range"
          data-testid="seam-blur"
          min={0}
          max={64}
          value={p.seamBlur}
          onChange={(e) => setParams({ seamBlur: Number(e.target.value) })}
        />
      </label>
      <p className="hint">
        The new area starts from the image's edge pixels stretched outwards, more blurred the further they go
        (as previewed); the overlap band of original pixels is repainted and cross-faded so the seam
        disappears.
      </p>
    </fieldset>
  )
}

function Board({ image }: { image: LoadedImage }): React.JSX.Element {
  const ext = useStore(studio, (s) => s.params.outpaint)
  const overlap = useStore(studio, (s) => s.params.outpaintOverlap)
  const [prefill, setPrefill] = useState<HTMLCanvasElement>()
  const intake = useImageIntake(useCallback((img: LoadedImage) => setInput('outpaint', img), []))

  // The pre-fill preview follows the extents, a moment after they settle (drags change them fast).
  useEffect(() => {
    const t = setTimeout(() => setPrefill(prefillPreview(image.element, image.width, image.height, ext)), 120)
    return () => clearTimeout(t)
  }, [image, ext])

  return (
    <div className="mask-editor" {...intake.dropProps}>
      {intake.input}
      <div className="toolbar">
        <span className="hint">Drag the blue handles or type the extents; they snap to multiples of 8.</span>
        <span className="sep" />
        <button type="button" onClick={intake.open}>
          Replace image…
        </button>
      </div>
      <OutpaintCanvas
        image={image}
        ext={ext}
        onExt={(outpaint) => setParams({ outpaint })}
        overlap={overlap}
        prefill={prefill}
      />
      {intake.error && (
        <p className="message error" role="alert">
          {intake.error}
        </p>
      )}
    </div>
  )
}

export function OutpaintPage(): React.JSX.Element {
  const image = useStore(studio, (s) => s.inputs.outpaint)
  const onImage = useCallback((img: LoadedImage) => setInput('outpaint', img), [])
  const inputs = useCallback(
    async (): Promise<ModeInputs> => ({
      image: image?.bytes,
      imageWidth: image?.width,
      imageHeight: image?.height,
    }),
    [image],
  )
  return (
    <section className="studio outpaint">
      <div className="studio-main stacked">
        <ResizeOffer tab="outpaint" />
        {image ? (
          <Board image={image} />
        ) : (
          <ImageDrop image={undefined} onImage={onImage} label="Image to extend" />
        )}
        <ResultsView tab="outpaint" />
      </div>
      <GenerationPanel mode="outpaint" inputs={inputs}>
        <ExtentControls image={image} />
      </GenerationPanel>
    </section>
  )
}
