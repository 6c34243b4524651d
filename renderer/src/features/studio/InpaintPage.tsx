import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react'
import { floor8, onlyMaskedArea } from '../../canvas-kit/geometry'
import { loadImageFile, type LoadedImage } from '../../canvas-kit/image-io'
import { maskAlphaFromImage, MaskSurface } from '../../canvas-kit/mask-surface'
import { isTypingTarget } from '../../canvas-kit/use-viewport'
import type { InpaintArea, MaskedContent } from '../../../../preload/contract-types'
import { GenerationPanel } from './GenerationPanel'
import { ResizeOffer } from './ResizeOffer'
import { ImageDrop, useImageIntake } from './ImageDrop'
import { InpaintCanvas, type MaskTool } from './InpaintCanvas'
import type { ModeInputs } from './params'
import { ResultsView } from './ResultsView'
import { useStore } from './store'
import { StrengthControl } from './StrengthControl'
import { setInput, setParams, studio } from './studio-state'

// One mask per input image, kept while the image is the Inpaint input (survives switching tabs).
const surfaces = new WeakMap<LoadedImage, MaskSurface>()
function surfaceFor(img: LoadedImage): MaskSurface {
  let s = surfaces.get(img)
  if (!s) {
    s = new MaskSurface(img.width, img.height)
    surfaces.set(img, s)
  }
  return s
}

const MASKED_CONTENT: { value: MaskedContent; label: string }[] = [
  { value: 'fill', label: 'Fill (colours from around the mask)' },
  { value: 'original', label: 'Original' },
  { value: 'latent-noise', label: 'Latent noise' },
  { value: 'latent-nothing', label: 'Latent nothing' },
]

function MaskOptions(): React.JSX.Element {
  const p = useStore(studio, (s) => s.params)
  return (
    <fieldset>
      <legend>Mask</legend>
      <label>
        <span className="row spread">
          <span>Mask blur</span>
          <span className="num">{p.maskBlur} px</span>
        </span>
        <input
          type="range"
          data-testid="mask-blur"
          min={0}
          max={64}
          value={p.maskBlur}
          onChange={(e) => setParams({ maskBlur: Number(e.target.value) })}
        />
      </label>
      <label>
        Masked content
        <select
          data-testid="masked-content"
          value={p.maskedContent}
          onChange={(e) => setParams({ maskedContent: e.target.value as MaskedContent })}
        >
          {MASKED_CONTENT.map((m) => (
            <option key={m.value} value={m.value}>
              {m.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Inpaint area
        <select
          data-testid="inpaint-area"
          value={p.inpaintArea}
          onChange={(e) => setParams({ inpaintArea: e.target.value as InpaintArea })}
        >
          <option value="whole-picture">Whole picture</option>
          <option value="only-masked">Only masked (crop, upscale, paste back)</option>
        </select>
      </label>
      {p.inpaintArea === 'only-masked' && (
        <label>
          <span className="row spread">
            <span>Only masked padding</span>
            <span className="num">{p.onlyMaskedPadding} px</span>
          </span>
          <input
            type="range"
            data-testid="masked-padding"
            min={0}
            max={256}
            step={4}
            value={p.onlyMaskedPadding}
            onChange={(e) => setParams({ onlyMaskedPadding: Number(e.target.value) })}
          />
        </label>
      )}
    </fieldset>
  )
}

function MaskEditor({ image }: { image: LoadedImage }): React.JSX.Element {
  const surface = surfaceFor(image)
  useSyncExternalStore(surface.onChange, () => surface.version)
  const [tool, setTool] = useState<MaskTool>('brush')
  const [brushSize, setBrushSize] = useState(() =>
    Math.max(8, Math.round(Math.min(image.width, image.height) / 16)),
  )
  const [opacity, setOpacity] = useState(0.6)
  const p = useStore(studio, (s) => s.params)
  const maskUpload = useRef<HTMLInputElement>(null)
  const [error, setError] = useState<string>()
  const intake = useImageIntake(useCallback((img: LoadedImage) => setInput('inpaint', img), []))

  const procW = p.sizeFromImage ? floor8(image.width) : p.width
  const procH = p.sizeFromImage ? floor8(image.height) : p.height
  const area =
    p.inpaintArea === 'only-masked'
      ? onlyMaskedArea(surface.bounds(), {
          blur: p.maskBlur,
          padding: p.onlyMaskedPadding,
          procW,
          procH,
          imgW: image.width,
          imgH: image.height,
        })
      : null

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (isTypingTarget(e.target)) return
      const k = e.key.toLowerCase()
      if ((e.ctrlKey || e.metaKey) && k === 'z') {
        e.preventDefault()
        if (e.shiftKey) surface.redo()
        else surface.undo()
      } else if ((e.ctrlKey || e.metaKey) && k === 'y') {
        e.preventDefault()
        surface.redo()
      } else if (e.key === '[') setBrushSize((s) => Math.max(1, Math.round(s / 1.2)))
      else if (e.key === ']') setBrushSize((s) => Math.min(1024, Math.round(s * 1.2) + 1))
      else if (k === 'b' && !e.ctrlKey) setTool('brush')
      else if (k === 'e' && !e.ctrlKey) setTool('eraser')
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [surface])

  const uploadMask = async (file: File | undefined): Promise<void> => {
    if (!file) return
    try {
      const img = await loadImageFile(file)
      surface.apply({ kind: 'image', alpha: maskAlphaFromImage(img.element, image.width, image.height) })
      URL.revokeObjectURL(img.url)
      setError(undefined)
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err))
    }
  }

  return (
    <div className="mask-editor" {...intake.dropProps}>
      {intake.input}
      <div className="toolbar" role="toolbar" aria-label="Mask tools">
        <button
          type="button"
          aria-pressed={tool === 'brush'}
          data-testid="tool-brush"
          title="Brush (B)"
          onClick={() => setTool('brush')}
        >
          Brush
        </button>
        <button
          type="button"
          aria-pressed={tool === 'eraser'}
          data-testid="tool-eraser"
          title="Eraser (E)"
          onClick={() => setTool('eraser')}
        >
          Eraser
        </button>
        <label className="inline" title="Brush size ([ and ])">
          Size
          <input
            type="range"
            min={1}
            max={Math.max(64, Math.round(Math.max(image.width, image.height) / 4))}
            value={brushSize}
            data-testid="brush-size"
            onChange={(e) => setBrushSize(Number(e.target.value))}
          />
          <span className="num" data-testid="brush-size-value">
            {brushSize}
          </span>
        </label>
        <label className="inline">
          Opacity
          <input
            type="range"
            min={0.1}
            max={1}
            step={0.05}
            value={opacity}
            data-testid="mask-opacity"
            onChange={(e) => setOpacity(Number(e.target.value))}
          />
        </label>
        <span className="sep" />
        <button
          type="button"
          data-testid="undo"
          disabled={!surface.canUndo}
          title="Undo (Ctrl+Z)"
          onClick={() => surface.undo()}
        >
          Undo
        </button>
        <button
          type="button"
          data-testid="redo"
          disabled={!surface.canRedo}
          title="Redo (Ctrl+Shift+Z)"
          onClick={() => surface.redo()}
        >
          Redo
        </button>
        <button type="button" data-testid="mask-clear" onClick={() => surface.apply({ kind: 'clear' })}>
          Clear
        </button>
        <button type="button" data-testid="mask-invert" onClick={() => surface.apply({ kind: 'invert' })}>
          Invert
        </button>
        <button type="button" onClick={() => maskUpload.current?.click()}>
          Upload mask…
        </button>
        <input
          ref={maskUpload}
          type="file"
          accept="image/png,image/jpeg,image/webp"
          hidden
          data-testid="mask-file"
          onChange={(e) => {
            void uploadMask(e.target.files?.[0])
            e.target.value = ''
          }}
        />
        <button type="button" onClick={intake.open}>
          Replace image…
        </button>
      </div>
      <InpaintCanvas
        image={image}
        surface={surface}
        tool={tool}
        brushSize={brushSize}
        maskOpacity={opacity}
        maskBlur={p.maskBlur}
        area={area}
      />
      <div className="well-bar" data-testid="mask-status" data-strokes={surface.strokeCount}>
        <span>
          {image.name} · {image.width}×{image.height} · {surface.strokeCount} stroke(s)
          {area
            ? ` · regenerates ${area.x2 - area.x1}×${area.y2 - area.y1} at (${area.x1}, ${area.y1}), processed at ${procW}×${procH}`
            : p.inpaintArea === 'only-masked'
              ? ' · paint a mask to see the area'
              : ''}
        </span>
        <span className="hint">
          Wheel: zoom · Space/middle-drag: pan · [ ]: size · Ctrl+Z / Ctrl+Shift+Z · keyboard: arrows,
          Shift+arrows paint, Enter
        </span>
      </div>
      {(error ?? intake.error) && (
        <p className="message error" role="alert">
          {error ?? intake.error}
        </p>
      )}
    </div>
  )
}

export function InpaintPage(): React.JSX.Element {
  const image = useStore(studio, (s) => s.inputs.inpaint)
  const onImage = useCallback((img: LoadedImage) => setInput('inpaint', img), [])
  const inputs = useCallback(async (): Promise<ModeInputs> => {
    if (!image) return {}
    const surface = surfaceFor(image)
    return {
      image: image.bytes,
      imageWidth: image.width,
      imageHeight: image.height,
      mask: surface.isEmpty() ? undefined : await surface.toPng(),
    }
  }, [image])

  return (
    <section className="studio inpaint">
      <div className="studio-main stacked">
        <ResizeOffer tab="inpaint" />
        {image ? (
          <MaskEditor key={image.url} image={image} />
        ) : (
          <ImageDrop image={undefined} onImage={onImage} label="Image to inpaint" />
        )}
        <ResultsView tab="inpaint" />
      </div>
      <GenerationPanel mode="inpaint" inputs={inputs} imageSize={image}>
        <StrengthControl />
        <MaskOptions />
      </GenerationPanel>
    </section>
  )
}
