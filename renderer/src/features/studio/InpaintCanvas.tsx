import type Konva from 'konva'
import { useEffect, useRef } from 'react'
import { Circle, Image as KImage, Layer, Rect, Stage } from 'react-konva'
import { toContent, type Rect as Box } from '../../canvas-kit/geometry'
import type { LoadedImage } from '../../canvas-kit/image-io'
import type { MaskSurface } from '../../canvas-kit/mask-surface'
import { useViewport } from '../../canvas-kit/use-viewport'
import { ViewControls } from '../../canvas-kit/ViewControls'

export type MaskTool = 'brush' | 'eraser'

/**
 * The inpaint board: image, mask and overlay layers in a zoomable, pannable Konva stage. Painting goes
 * straight into the mask canvas per pointer move (coalesced events, segment by segment) and only
 * redraws the mask layer: React renders nothing while a stroke runs.
 */
export function InpaintCanvas({
  image,
  surface,
  tool,
  brushSize,
  maskOpacity,
  maskBlur,
  area,
}: {
  image: LoadedImage
  surface: MaskSurface
  tool: MaskTool
  brushSize: number
  maskOpacity: number
  /** Shown as a CSS blur of the mask layer, scaled with the zoom. */
  maskBlur: number
  /** The area "only masked" regenerates, if that mode is on. */
  area: Box | null
}): React.JSX.Element {
  const box = useRef<HTMLDivElement>(null)
  const vp = useViewport(box, image.width, image.height)
  const maskLayer = useRef<Konva.Layer>(null)
  const haloLayer = useRef<Konva.Layer>(null)
  const uiLayer = useRef<Konva.Layer>(null)
  const cursor = useRef<Konva.Circle>(null)
  const { view } = vp

  // Redraw the mask when it changes outside a stroke (undo, invert, upload, clear); the blur halo follows
  // finished changes only, so a stroke in progress redraws one layer.
  useEffect(
    () =>
      surface.onChange(() => {
        maskLayer.current?.batchDraw()
        haloLayer.current?.batchDraw()
      }),
    [surface],
  )

  // The halo is the mask under a CSS blur of the mask-blur sigma (at screen scale): where the blurred
  // mask reaches, beyond the sharp painted edge.
  useEffect(() => {
    const el = haloLayer.current?.getNativeCanvasElement()
    if (el) el.style.filter = maskBlur > 0 ? `blur(${(maskBlur * view.scale).toFixed(2)}px)` : ''
  }, [maskBlur, view.scale])

  const point = (e: React.PointerEvent | PointerEvent): { x: number; y: number } => {
    const r = box.current?.getBoundingClientRect()
    return toContent(view, e.clientX - (r?.left ?? 0), e.clientY - (r?.top ?? 0))
  }

  const moveCursor = (x: number, y: number, visible: boolean): void => {
    const c = cursor.current
    if (!c) return
    c.position({ x, y })
    c.visible(visible)
    uiLayer.current?.batchDraw()
  }

  const onPointerDown = (e: React.PointerEvent<HTMLDivElement>): void => {
    if (vp.panPointerDown(e.nativeEvent)) return
    if (e.button !== 0) return
    e.currentTarget.setPointerCapture(e.pointerId)
    const p = point(e)
    surface.beginStroke(p.x, p.y, brushSize, tool === 'eraser' ? 'erase' : 'paint')
    maskLayer.current?.batchDraw()
  }

  const onPointerMove = (e: React.PointerEvent<HTMLDivElement>): void => {
    if (vp.panPointerMove(e.nativeEvent)) return
    const p = point(e)
    if (surface.stroking) {
      const events = e.nativeEvent.getCoalescedEvents?.() ?? []
      if (events.length > 1)
        for (const ce of events) {
          const q = point(ce)
          surface.extendStroke(q.x, q.y)
        }
      else surface.extendStroke(p.x, p.y)
      maskLayer.current?.batchDraw()
    }
    moveCursor(p.x, p.y, !vp.isPanning())
  }

  // Keyboard painting (the canvas takes focus): arrows move the brush by half its size, Shift+arrows paint
  // a line as they move, Enter paints a dot; B / E / [ ] and Ctrl+Z work as with the mouse.
  const keyPos = useRef<{ x: number; y: number } | null>(null)
  const onKeyDown = (e: React.KeyboardEvent<HTMLDivElement>): void => {
    const at = keyPos.current ?? { x: image.width / 2, y: image.height / 2 }
    const mode = tool === 'eraser' ? 'erase' : 'paint'
    if (e.key === 'Enter') {
      e.preventDefault()
      surface.beginStroke(at.x, at.y, brushSize, mode)
      surface.endStroke()
      keyPos.current = at
      moveCursor(at.x, at.y, true)
      return
    }
    const dir: Record<string, [number, number]> = {
      ArrowLeft: [-1, 0],
      ArrowRight: [1, 0],
      ArrowUp: [0, -1],
      ArrowDown: [0, 1],
    }
    const d = dir[e.key]
    if (!d) return
    e.preventDefault()
    const step = Math.max(1, Math.round(brushSize / 2))
    const next = {
      x: Math.min(image.width, Math.max(0, at.x + d[0] * step)),
      y: Math.min(image.height, Math.max(0, at.y + d[1] * step)),
    }
    if (e.shiftKey) {
      surface.beginStroke(at.x, at.y, brushSize, mode)
      surface.extendStroke(next.x, next.y)
      surface.endStroke()
    }
    keyPos.current = next
    moveCursor(next.x, next.y, true)
  }

  const onPointerUp = (e: React.PointerEvent<HTMLDivElement>): void => {
    if (vp.panPointerUp(e.nativeEvent)) return
    if (surface.stroking) surface.endStroke()
  }

  return (
    <div
      ref={box}
      className={`canvas-box ${vp.spaceHeld ? 'panning' : 'painting'}`}
      data-testid="inpaint-canvas"
      role="application"
      tabIndex={0}
      aria-label="Mask canvas"
      aria-roledescription="mask canvas"
      aria-describedby="mask-canvas-keys"
      onKeyDown={onKeyDown}
      onFocus={() => {
        const at = keyPos.current ?? { x: image.width / 2, y: image.height / 2 }
        moveCursor(at.x, at.y, true)
      }}
      onBlur={() => moveCursor(0, 0, false)}
      data-view={`${view.scale},${view.x},${view.y}`}
      onPointerDown={onPointerDown}
      onPointerMove={onPointerMove}
      onPointerUp={onPointerUp}
      onPointerCancel={onPointerUp}
      onPointerLeave={() => moveCursor(0, 0, false)}
      onContextMenu={(e) => e.preventDefault()}
    >
      <Stage
        width={vp.size.width}
        height={vp.size.height}
        scaleX={view.scale}
        scaleY={view.scale}
        x={view.x}
        y={view.y}
        listening={false}
      >
        <Layer listening={false}>
          <Rect width={image.width} height={image.height} fill="#000" />
          <KImage image={image.element} width={image.width} height={image.height} />
        </Layer>
        <Layer
          ref={haloLayer}
          listening={false}
          opacity={Math.min(1, maskOpacity * 0.8)}
          visible={maskBlur > 0}
        >
          <KImage image={surface.canvas} width={image.width} height={image.height} />
        </Layer>
        <Layer ref={maskLayer} listening={false} opacity={maskOpacity}>
          <KImage image={surface.canvas} width={image.width} height={image.height} />
        </Layer>
        <Layer ref={uiLayer} listening={false}>
          <Rect
            width={image.width}
            height={image.height}
            stroke="#5a5e6b"
            strokeWidth={1}
            strokeScaleEnabled={false}
          />
          {area && (
            <Rect
              x={area.x1}
              y={area.y1}
              width={area.x2 - area.x1}
              height={area.y2 - area.y1}
              stroke="#ffd166"
              strokeWidth={2}
              dash={[8, 6]}
              strokeScaleEnabled={false}
            />
          )}
          <Circle
            ref={cursor}
            radius={brushSize / 2}
            stroke={tool === 'eraser' ? '#9ad0ff' : '#ffffff'}
            strokeWidth={1.5}
            strokeScaleEnabled={false}
            visible={false}
          />
        </Layer>
      </Stage>
      <ViewControls vp={vp} />
      <p id="mask-canvas-keys" className="visually-hidden">
        Paint the area to repaint. Mouse: drag to paint, wheel to zoom, space or middle button to pan.
        Keyboard: arrow keys move the brush, Shift with an arrow paints a line, Enter paints a dot; B brush, E
        eraser, [ and ] brush size, Ctrl+Z undo.
      </p>
    </div>
  )
}
