import type Konva from 'konva'
import { useRef, useState } from 'react'
import { Group, Image as KImage, Layer, Rect, Stage, Text } from 'react-konva'
import { snap8, type Extension } from '../../canvas-kit/geometry'
import type { LoadedImage } from '../../canvas-kit/image-io'
import { useViewport } from '../../canvas-kit/use-viewport'
import { ViewControls } from '../../canvas-kit/ViewControls'

type Side = keyof Extension

const HANDLE = 14

/**
 * The outpaint board: the image on a larger canvas, the new area shown with its pre-fill, the overlap
 * band (original pixels repainted to hide the seam) and a drag handle per side. Handle drags snap each
 * side to a multiple of 8.
 */
export function OutpaintCanvas({
  image,
  ext,
  onExt,
  overlap,
  prefill,
}: {
  image: LoadedImage
  ext: Extension
  onExt: (ext: Extension) => void
  overlap: number
  prefill: HTMLCanvasElement | undefined
}): React.JSX.Element {
  const boardW = image.width + ext.left + ext.right
  const boardH = image.height + ext.top + ext.bottom
  const [dragging, setDragging] = useState<{ key: string; left: number; top: number } | null>(null)
  // While a handle is dragged the view (and the image on screen) holds still and the board grows around
  // it; the view refits to the new board afterwards.
  const box = useRef<HTMLDivElement>(null)
  const vp = useViewport(box, boardW, boardH, dragging ? dragging.key : `${image.url}:${boardW}x${boardH}`)
  const offX = dragging ? dragging.left : ext.left
  const offY = dragging ? dragging.top : ext.top
  // Content coordinates: the image at (0, 0), the board from (-left, -top).
  const view = {
    scale: vp.view.scale,
    x: vp.view.x + offX * vp.view.scale,
    y: vp.view.y + offY * vp.view.scale,
  }
  const handleSize = HANDLE / view.scale
  const bx = -ext.left
  const by = -ext.top
  const midY = (by + image.height + ext.bottom) / 2
  const midX = (bx + image.width + ext.right) / 2

  const handlePos = (side: Side): { x: number; y: number } => {
    switch (side) {
      case 'left':
        return { x: bx - handleSize / 2, y: midY - handleSize * 1.5 }
      case 'right':
        return { x: image.width + ext.right - handleSize / 2, y: midY - handleSize * 1.5 }
      case 'top':
        return { x: midX - handleSize * 1.5, y: by - handleSize / 2 }
      case 'bottom':
        return { x: midX - handleSize * 1.5, y: image.height + ext.bottom - handleSize / 2 }
    }
  }

  const onDrag = (side: Side, node: Konva.Node): void => {
    const p = handlePos(side)
    const cx = node.x() + handleSize / 2
    const cy = node.y() + handleSize / 2
    const v =
      side === 'left' ? -cx : side === 'right' ? cx - image.width : side === 'top' ? -cy : cy - image.height
    // Keep the handle on its axis.
    if (side === 'left' || side === 'right') node.y(p.y)
    else node.x(p.x)
    const next = Math.min(2048, snap8(v))
    if (next !== ext[side]) onExt({ ...ext, [side]: next })
  }

  const sides: Side[] = ['left', 'right', 'top', 'bottom']
  const band = Math.min(overlap, image.width / 2, image.height / 2)

  return (
    <div
      ref={box}
      className={`canvas-box ${vp.spaceHeld ? 'panning' : ''}`}
      data-testid="outpaint-canvas"
      data-board={`${boardW}x${boardH}`}
      onPointerDown={(e) => vp.panPointerDown(e.nativeEvent)}
      onPointerMove={(e) => vp.panPointerMove(e.nativeEvent)}
      onPointerUp={(e) => vp.panPointerUp(e.nativeEvent)}
      onContextMenu={(e) => e.preventDefault()}
    >
      <Stage
        width={vp.size.width}
        height={vp.size.height}
        scaleX={view.scale}
        scaleY={view.scale}
        x={view.x}
        y={view.y}
      >
        <Layer listening={false}>
          <Rect x={bx} y={by} width={boardW} height={boardH} fill="#2a2c34" />
          {prefill && <KImage image={prefill} x={bx} y={by} width={boardW} height={boardH} opacity={0.9} />}
          <KImage image={image.element} width={image.width} height={image.height} />
          {/* New area: hatched outline; overlap: the band of original pixels that is repainted. */}
          <Rect
            x={bx}
            y={by}
            width={boardW}
            height={boardH}
            stroke="#7c9cff"
            strokeWidth={1.5}
            dash={[10, 6]}
            strokeScaleEnabled={false}
          />
          <Rect
            width={image.width}
            height={image.height}
            stroke="#e7e7ea"
            strokeWidth={1}
            strokeScaleEnabled={false}
          />
          {band > 0 && ext.left > 0 && (
            <Rect width={band} height={image.height} fill="rgba(255,209,102,0.22)" />
          )}
          {band > 0 && ext.right > 0 && (
            <Rect x={image.width - band} width={band} height={image.height} fill="rgba(255,209,102,0.22)" />
          )}
          {band > 0 && ext.top > 0 && (
            <Rect width={image.width} height={band} fill="rgba(255,209,102,0.22)" />
          )}
          {band > 0 && ext.bottom > 0 && (
            <Rect y={image.height - band} width={image.width} height={band} fill="rgba(255,209,102,0.22)" />
          )}
          <Text
            x={bx + 4 / view.scale}
            y={by + 4 / view.scale}
            text={`${boardW}×${boardH}`}
            fontSize={12 / view.scale}
            fill="#e7e7ea"
          />
        </Layer>
        <Layer>
          {sides.map((side) => {
            const p = handlePos(side)
            return (
              <Group key={side}>
                <Rect
                  name={`handle-${side}`}
                  x={p.x}
                  y={p.y}
                  width={side === 'left' || side === 'right' ? handleSize : handleSize * 3}
                  height={side === 'left' || side === 'right' ? handleSize * 3 : handleSize}
                  fill="#7c9cff"
                  stroke="#16171b"
                  strokeWidth={1 / view.scale}
                  cornerRadius={3 / view.scale}
                  draggable
                  onMouseEnter={(e) => {
                    const c = e.target.getStage()?.container()
                    if (c) c.style.cursor = side === 'left' || side === 'right' ? 'ew-resize' : 'ns-resize'
                  }}
                  onMouseLeave={(e) => {
                    const c = e.target.getStage()?.container()
                    if (c) c.style.cursor = ''
                  }}
                  onDragStart={() =>
                    setDragging({ key: `${image.url}:${boardW}x${boardH}`, left: ext.left, top: ext.top })
                  }
                  onDragMove={(e) => onDrag(side, e.target)}
                  onDragEnd={(e) => {
                    onDrag(side, e.target)
                    setDragging(null)
                  }}
                />
              </Group>
            )
          })}
        </Layer>
      </Stage>
      <ViewControls vp={vp} />
    </div>
  )
}
