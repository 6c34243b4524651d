/**
 * The inpaint mask as an offscreen canvas at image resolution. Strokes are drawn into it segment by
 * segment as the pointer moves (no React render per move); Konva shows the canvas through an Image node.
 * Painted pixels carry the display colour with alpha = coverage; the export turns alpha into grey
 * (white = repaint) on black, at image size.
 */
import { alphaBounds, type Rect } from './geometry'
import { History } from './history'

export type MaskOp =
  | { kind: 'stroke'; mode: 'paint' | 'erase'; size: number; points: number[] }
  | { kind: 'clear' }
  | { kind: 'invert' }
  | { kind: 'fill' }
  | { kind: 'image'; alpha: Uint8ClampedArray }

export const MASK_COLOR = 'rgb(255, 64, 112)'

export class MaskSurface {
  readonly canvas: HTMLCanvasElement
  private readonly ctx: CanvasRenderingContext2D
  private readonly history = new History<MaskOp>(300)
  private current: Extract<MaskOp, { kind: 'stroke' }> | undefined
  private readonly listeners = new Set<() => void>()
  private boundsCache: Rect | null | undefined = null
  /** Bumped on every finished change (a snapshot for useSyncExternalStore). */
  version = 0

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.canvas = document.createElement('canvas')
    this.canvas.width = width
    this.canvas.height = height
    const ctx = this.canvas.getContext('2d', { willReadFrequently: false })
    if (!ctx) throw new Error('This browser cannot create a 2D canvas for the mask.')
    this.ctx = ctx
  }

  /** Called after every finished operation (stroke end, undo, invert...), not during a stroke. */
  onChange = (fn: () => void): (() => void) => {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private changed(): void {
    this.boundsCache = undefined
    this.version++
    for (const fn of this.listeners) fn()
  }

  get canUndo(): boolean {
    return this.history.canUndo
  }

  get canRedo(): boolean {
    return this.history.canRedo
  }

  get strokeCount(): number {
    return this.history.ops.filter((o) => o.kind === 'stroke').length
  }

  beginStroke(x: number, y: number, size: number, mode: 'paint' | 'erase'): void {
    this.current = { kind: 'stroke', mode, size, points: [x, y] }
    this.dot(x, y, size, mode)
  }

  /** Draws the segment from the previous point: O(segment), whatever the image size. */
  extendStroke(x: number, y: number): void {
    const s = this.current
    if (!s) return
    const n = s.points.length
    const px = s.points[n - 2] ?? x
    const py = s.points[n - 1] ?? y
    if (Math.abs(px - x) < 0.5 && Math.abs(py - y) < 0.5) return
    s.points.push(x, y)
    this.segment(px, py, x, y, s.size, s.mode)
  }

  endStroke(): void {
    if (!this.current) return
    this.history.push(this.current)
    this.current = undefined
    this.changed()
  }

  get stroking(): boolean {
    return this.current !== undefined
  }

  apply(op: MaskOp): void {
    this.history.push(op)
    this.draw(op)
    this.changed()
  }

  undo(): boolean {
    if (!this.history.undo()) return false
    this.replay()
    this.changed()
    return true
  }

  redo(): boolean {
    const op = this.history.redo()
    if (!op) return false
    this.draw(op)
    this.changed()
    return true
  }

  /** Start over with an empty mask and no history (a new image). */
  reset(): void {
    this.history.reset()
    this.ctx.clearRect(0, 0, this.width, this.height)
    this.changed()
  }

  private replay(): void {
    this.ctx.clearRect(0, 0, this.width, this.height)
    for (const op of this.history.ops) this.draw(op)
  }

  private draw(op: MaskOp): void {
    const ctx = this.ctx
    switch (op.kind) {
      case 'stroke': {
        const p = op.points
        this.dot(p[0] ?? 0, p[1] ?? 0, op.size, op.mode)
        for (let i = 2; i + 1 < p.length; i += 2)
          this.segment(p[i - 2] ?? 0, p[i - 1] ?? 0, p[i] ?? 0, p[i + 1] ?? 0, op.size, op.mode)
        break
      }
      case 'clear':
        ctx.clearRect(0, 0, this.width, this.height)
        break
      case 'fill':
        ctx.globalCompositeOperation = 'source-over'
        ctx.fillStyle = MASK_COLOR
        ctx.fillRect(0, 0, this.width, this.height)
        break
      case 'invert':
        this.mapAlpha((a) => 255 - a)
        break
      case 'image': {
        const alpha = op.alpha
        this.mapAlpha((_a, i) => alpha[i] ?? 0)
        break
      }
    }
  }

  private mapAlpha(f: (a: number, i: number) => number): void {
    const img = this.ctx.getImageData(0, 0, this.width, this.height)
    const d = img.data
    // The colour channels are rewritten too: erased pixels keep no colour, so the display stays uniform.
    for (let i = 0, p = 0; p < d.length; i++, p += 4) {
      const a = f(d[p + 3] ?? 0, i)
      d[p] = 255
      d[p + 1] = 64
      d[p + 2] = 112
      d[p + 3] = a
    }
    this.ctx.putImageData(img, 0, 0)
  }

  private style(size: number, mode: 'paint' | 'erase'): void {
    const ctx = this.ctx
    ctx.globalCompositeOperation = mode === 'erase' ? 'destination-out' : 'source-over'
    ctx.strokeStyle = MASK_COLOR
    ctx.fillStyle = MASK_COLOR
    ctx.lineWidth = size
    ctx.lineCap = 'round'
    ctx.lineJoin = 'round'
  }

  private dot(x: number, y: number, size: number, mode: 'paint' | 'erase'): void {
    this.style(size, mode)
    this.ctx.beginPath()
    this.ctx.arc(x, y, size / 2, 0, Math.PI * 2)
    this.ctx.fill()
    this.ctx.globalCompositeOperation = 'source-over'
  }

  private segment(
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    size: number,
    mode: 'paint' | 'erase',
  ): void {
    this.style(size, mode)
    this.ctx.beginPath()
    this.ctx.moveTo(x0, y0)
    this.ctx.lineTo(x1, y1)
    this.ctx.stroke()
    this.ctx.globalCompositeOperation = 'source-over'
  }

  /** Bounding box of painted pixels (exact; computed once per change). */
  bounds(): Rect | null {
    if (this.boundsCache === undefined) {
      const d = this.ctx.getImageData(0, 0, this.width, this.height).data
      this.boundsCache = alphaBounds(d, this.width, this.height, 0)
    }
    return this.boundsCache
  }

  isEmpty(): boolean {
    return this.bounds() === null
  }

  /** The mask as PNG bytes at image resolution: grey = alpha (white = repaint) on black, opaque. */
  async toPng(): Promise<Uint8Array> {
    const out = document.createElement('canvas')
    out.width = this.width
    out.height = this.height
    const octx = out.getContext('2d')
    if (!octx) throw new Error('This browser cannot create a 2D canvas for the mask.')
    const src = this.ctx.getImageData(0, 0, this.width, this.height).data
    const img = octx.createImageData(this.width, this.height)
    const d = img.data
    for (let p = 0; p < d.length; p += 4) {
      const a = src[p + 3] ?? 0
      d[p] = a
      d[p + 1] = a
      d[p + 2] = a
      d[p + 3] = 255
    }
    octx.putImageData(img, 0, 0)
    return canvasToPng(out)
  }
}

export async function canvasToPng(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'))
  if (!blob) throw new Error('The canvas could not be encoded as PNG.')
  return new Uint8Array(await blob.arrayBuffer())
}

/**
 * Alpha for an uploaded mask image, scaled to the mask size: its alpha channel where it has transparency
 * (A1111's rule for RGBA masks), otherwise its luminance (white = repaint).
 */
export function maskAlphaFromImage(
  source: CanvasImageSource,
  width: number,
  height: number,
): Uint8ClampedArray {
  const c = document.createElement('canvas')
  c.width = width
  c.height = height
  const ctx = c.getContext('2d')
  if (!ctx) throw new Error('This browser cannot create a 2D canvas for the mask.')
  ctx.drawImage(source, 0, 0, width, height)
  const d = ctx.getImageData(0, 0, width, height).data
  let transparent = false
  for (let p = 3; p < d.length; p += 4)
    if ((d[p] ?? 255) < 255) {
      transparent = true
      break
    }
  const alpha = new Uint8ClampedArray(width * height)
  for (let i = 0, p = 0; i < alpha.length; i++, p += 4) {
    alpha[i] = transparent
      ? (d[p + 3] ?? 0)
      : Math.round(0.299 * (d[p] ?? 0) + 0.587 * (d[p + 1] ?? 0) + 0.114 * (d[p + 2] ?? 0))
  }
  return alpha
}
