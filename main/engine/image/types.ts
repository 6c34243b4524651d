/**
 * Images are interleaved uint8 buffers (HWC). `channels` is 3 (RGB), 4 (RGBA) or 1 (masks: 255 = repaint).
 */
export interface RawImage {
  data: Uint8Array
  width: number
  height: number
  channels: 1 | 3 | 4
}

/** A single-channel mask; 255 = repaint (white), 0 = keep. */
export type Mask = RawImage & { channels: 1 }

export interface Rect {
  x1: number
  y1: number
  /** exclusive */
  x2: number
  /** exclusive */
  y2: number
}

export function createImage(width: number, height: number, channels: 1 | 3 | 4, fill = 0): RawImage {
  checkSize(width, height)
  return { data: new Uint8Array(width * height * channels).fill(fill), width, height, channels }
}

export function createMask(width: number, height: number, fill = 0): Mask {
  return createImage(width, height, 1, fill) as Mask
}

export function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive integers (got ${width}x${height})`)
  }
}

export function checkImage(img: RawImage, what = 'image'): void {
  checkSize(img.width, img.height)
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new RangeError(
      `${what}: buffer has ${img.data.length} bytes, expected ${img.width}x${img.height}x${img.channels}`,
    )
  }
}

export function cloneImage<T extends RawImage>(img: T): T {
  return { ...img, data: img.data.slice() }
}

/** Copy the rectangle [x1,x2)×[y1,y2) (must lie inside the image). */
export function cropImage<T extends RawImage>(img: T, r: Rect): T {
  const w = r.x2 - r.x1
  const h = r.y2 - r.y1
  if (r.x1 < 0 || r.y1 < 0 || r.x2 > img.width || r.y2 > img.height || w < 1 || h < 1) {
    throw new RangeError(
      `crop ${r.x1},${r.y1}-${r.x2},${r.y2} is outside the ${img.width}x${img.height} image or empty`,
    )
  }
  const c = img.channels
  const out = new Uint8Array(w * h * c)
  for (let y = 0; y < h; y++) {
    const src = ((r.y1 + y) * img.width + r.x1) * c
    out.set(img.data.subarray(src, src + w * c), y * w * c)
  }
  return { ...img, data: out, width: w, height: h }
}

/** Paste `src` into `dst` at (x, y) (clipped to dst, like PIL's paste without mask). Mutates dst. */
export function pasteImage(dst: RawImage, src: RawImage, x: number, y: number): void {
  if (dst.channels !== src.channels) throw new RangeError('pasteImage: channel counts differ')
  const c = dst.channels
  const x0 = Math.max(0, x)
  const x1 = Math.min(dst.width, x + src.width)
  if (x1 <= x0) return
  for (let sy = 0; sy < src.height; sy++) {
    const dy = y + sy
    if (dy < 0 || dy >= dst.height) continue
    const s = (sy * src.width + (x0 - x)) * c
    dst.data.set(src.data.subarray(s, s + (x1 - x0) * c), (dy * dst.width + x0) * c)
  }
}

/** Drop alpha (RGBA → RGB) or expand a mask to grey RGB. */
export function toRgb(img: RawImage): RawImage {
  if (img.channels === 3) return img
  const n = img.width * img.height
  const out = new Uint8Array(n * 3)
  for (let i = 0; i < n; i++) {
    if (img.channels === 4) {
      out[i * 3] = img.data[i * 4] as number
      out[i * 3 + 1] = img.data[i * 4 + 1] as number
      out[i * 3 + 2] = img.data[i * 4 + 2] as number
    } else {
      const v = img.data[i] as number
      out[i * 3] = v
      out[i * 3 + 1] = v
      out[i * 3 + 2] = v
    }
  }
  return { data: out, width: img.width, height: img.height, channels: 3 }
}
