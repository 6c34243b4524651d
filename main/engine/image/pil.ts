import type { RawImage } from './types'

/**
 * Integer re-implementations of the few Pillow operations A1111's inpainting code relies on, so the pure-TS
 * versions behave like upstream: premultiplied RGBa conversion, masked paste, alpha_composite, GaussianBlur
 * (3 extended box blurs), RGB→L, and the separable resampler (used for Lanczos/bicubic with a crop box).
 * Sources: Pillow libImaging Convert.c, Paste.c, AlphaComposite.c, BoxBlur.c, Resample.c.
 */

// ---------------------------------------------------------------------------------------------------------------
// pixel arithmetic

/** MULDIV255: round(a*b/255) the way libImaging computes it. */
export function mulDiv255(a: number, b: number): number {
  const tmp = a * b + 128
  return ((tmp >> 8) + tmp) >> 8
}

/** RGBA → RGBa (premultiplied), 4 channels in, 4 out. */
export function premultiply(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgba.length)
  for (let i = 0; i < rgba.length; i += 4) {
    const a = rgba[i + 3] as number
    out[i] = mulDiv255(rgba[i] as number, a)
    out[i + 1] = mulDiv255(rgba[i + 1] as number, a)
    out[i + 2] = mulDiv255(rgba[i + 2] as number, a)
    out[i + 3] = a
  }
  return out
}

/** RGBa → RGBA (remove premultiplication). */
export function unpremultiply(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgba.length)
  for (let i = 0; i < rgba.length; i += 4) {
    const a = rgba[i + 3] as number
    if (a === 255 || a === 0) {
      out[i] = rgba[i] as number
      out[i + 1] = rgba[i + 1] as number
      out[i + 2] = rgba[i + 2] as number
    } else {
      out[i] = Math.min(255, Math.floor((255 * (rgba[i] as number)) / a))
      out[i + 1] = Math.min(255, Math.floor((255 * (rgba[i + 1] as number)) / a))
      out[i + 2] = Math.min(255, Math.floor((255 * (rgba[i + 2] as number)) / a))
    }
    out[i + 3] = a
  }
  return out
}

/** `dst.paste(src, mask=L)` for same-size images with `channels` bytes per pixel: every byte blended. */
export function pasteWithMask(dst: Uint8Array, src: Uint8Array, mask: Uint8Array, channels: number): void {
  for (let p = 0; p < mask.length; p++) {
    const m = mask[p] as number
    if (m === 0) continue
    for (let c = 0; c < channels; c++) {
      const i = p * channels + c
      const tmp = (dst[i] as number) * (255 - m) + (src[i] as number) * m + 128
      dst[i] = ((tmp >> 8) + tmp) >> 8
    }
  }
}

/** `dst.alpha_composite(src)` (both RGBA, same size): src over dst, in place. */
export function alphaCompositeInPlace(dst: Uint8Array, src: Uint8Array): void {
  const PRECISION = 128 // 1 << 7
  for (let i = 0; i < dst.length; i += 4) {
    const sa = src[i + 3] as number
    if (sa === 0) continue
    const da = dst[i + 3] as number
    const blend = da * (255 - sa)
    const outa255 = sa * 255 + blend
    const coef1 = Math.floor((sa * 255 * 255 * PRECISION) / outa255)
    const coef2 = 255 * PRECISION - coef1
    for (let c = 0; c < 3; c++) {
      const t = (src[i + c] as number) * coef1 + (dst[i + c] as number) * coef2 + (0x80 << 7)
      dst[i + c] = Math.floor((Math.floor(t / 256) + t) / 256) >> 7
    }
    const ta = outa255 + 0x80
    dst[i + 3] = ((ta >> 8) + ta) >> 8
  }
}

/** PIL `convert('L')` of RGB(A): L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16. */
export function luminance(img: RawImage): Uint8Array {
  const n = img.width * img.height
  if (img.channels === 1) return img.data.slice()
  const out = new Uint8Array(n)
  const c = img.channels
  for (let p = 0; p < n; p++) {
    const r = img.data[p * c] as number
    const g = img.data[p * c + 1] as number
    const b = img.data[p * c + 2] as number
    out[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// box / Gaussian blur (BoxBlur.c)

/** One channel of one line: `line` in, `res` out (ImagingLineBoxBlur8/32 for one byte lane). */
function lineBoxBlur(
  line: Int32Array,
  res: Uint8Array,
  count: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const lastx = count - 1
  const edgeA = Math.min(radius + 1, count)
  const edgeB = Math.max(count - radius - 1, 0)
  const first = line[0] as number
  const last = line[lastx] as number
  let acc = first * (radius + 1)
  for (let x = 0; x < edgeA - 1; x++) acc += line[x] as number
  acc += last * (radius - edgeA + 1)
  // bulk = acc·ww + (left + right)·fw < 2^32, out = (bulk + 2^23) >> 24 (unsigned)
  if (edgeA <= edgeB) {
    for (let x = 0; x < edgeA; x++) {
      acc += (line[x + radius] as number) - first
      res[x] = (acc * ww + (first + (line[x + radius + 1] as number)) * fw + 8388608) >>> 24
    }
    for (let x = edgeA; x < edgeB; x++) {
      const l = line[x - radius - 1] as number
      acc += (line[x + radius] as number) - l
      res[x] = (acc * ww + (l + (line[x + radius + 1] as number)) * fw + 8388608) >>> 24
    }
    for (let x = edgeB; x <= lastx; x++) {
      const l = line[x - radius - 1] as number
      acc += last - l
      res[x] = (acc * ww + (l + last) * fw + 8388608) >>> 24
    }
  } else {
    for (let x = 0; x < edgeB; x++) {
      acc += (line[x + radius] as number) - first
      res[x] = (acc * ww + (first + (line[x + radius + 1] as number)) * fw + 8388608) >>> 24
    }
    for (let x = edgeB; x < edgeA; x++) {
      acc += last - first
      res[x] = (acc * ww + (first + last) * fw + 8388608) >>> 24
    }
    for (let x = edgeA; x <= lastx; x++) {
      const l = line[x - radius - 1] as number
      acc += last - l
      res[x] = (acc * ww + (l + last) * fw + 8388608) >>> 24
    }
  }
}

/** Blur every line along one axis, `passes` times (line = row when stride = channels, column otherwise). */
function blurLines(
  data: Uint8Array,
  lines: number,
  lineStep: number,
  count: number,
  stride: number,
  channels: number,
  passes: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const buf = Array.from({ length: channels }, () => new Int32Array(count))
  const res = new Uint8Array(count)
  for (let li = 0; li < lines; li++) {
    const base = li * lineStep
    for (let x = 0, o = base; x < count; x++, o += stride) {
      for (let c = 0; c < channels; c++) (buf[c] as Int32Array)[x] = data[o + c] as number
    }
    for (let c = 0; c < channels; c++) {
      const line = buf[c] as Int32Array
      for (let p = 0; p < passes; p++) {
        lineBoxBlur(line, res, count, radius, ww, fw)
        line.set(res)
      }
    }
    for (let x = 0, o = base; x < count; x++, o += stride) {
      for (let c = 0; c < channels; c++) data[o + c] = (buf[c] as Int32Array)[x] as number
    }
  }
}

/** ImagingBoxBlur: `passes` horizontal box blurs of (float) radius, then `passes` vertical ones. */
export function boxBlur(img: RawImage, floatRadius: number, passes = 3): RawImage {
  const out = { ...img, data: img.data.slice() }
  const r = Math.fround(floatRadius)
  const radius = Math.trunc(r)
  const ww = Math.trunc(Math.fround(16777216 / Math.fround(Math.fround(r * 2) + 1)))
  const fw = Math.floor((16777216 - (radius * 2 + 1) * ww) / 2)
  const { width: w, height: h, channels: ch } = img
  // all horizontal passes, then all vertical ones (each line is independent, so per-line passes are equivalent)
  blurLines(out.data, h, w * ch, w, ch, ch, passes, radius, ww, fw)
  blurLines(out.data, w, ch, h, w * ch, ch, passes, radius, ww, fw)
  return out
}

/** Box radius PIL uses for a Gaussian of standard deviation `radius` made of `passes` box blurs. */
export function gaussianBoxRadius(radius: number, passes = 3): number {
  const r = Math.fround(radius)
  const sigma2 = Math.fround((r * r) / passes)
  const L = Math.fround(Math.sqrt(12.0 * sigma2 + 1.0))
  const l = Math.fround(Math.floor((L - 1.0) / 2.0))
  let a = Math.fround((2 * l + 1) * (l * (l + 1) - 3 * sigma2))
  a = Math.fround(a / (6 * (sigma2 - (l + 1) * (l + 1))))
  return Math.fround(l + a)
}

/** `ImageFilter.GaussianBlur(radius)`: three extended box blurs per axis. */
export function pilGaussianBlur(img: RawImage, radius: number): RawImage {
  if (radius <= 0) return { ...img, data: img.data.slice() }
  return boxBlur(img, gaussianBoxRadius(radius, 3), 3)
}

// ---------------------------------------------------------------------------------------------------------------
// separable resampling (Resample.c, 8 bits per channel)

export type PilFilter = 'lanczos' | 'bicubic' | 'bilinear' | 'box'

const FILTERS: Record<PilFilter, { support: number; fn: (x: number) => number }> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const ax = Math.abs(x)
      return ax < 1 ? 1 - ax : 0
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5
      const ax = Math.abs(x)
      if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1
      if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a
      return 0
    },
  },
  lanczos: {
    support: 3,
    fn: (x) => {
      const sinc = (v: number): number => (v === 0 ? 1 : Math.sin(v * Math.PI) / (v * Math.PI))
      return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0
    },
  },
}

const PRECISION_BITS = 22

interface Coeffs {
  bounds: Int32Array // [min, count] per output position
  kk: Int32Array // fixed-point coefficients, ksize per output position
  ksize: number
}

function precomputeCoeffs(
  inSize: number,
  in0: number,
  in1: number,
  outSize: number,
  filter: PilFilter,
): Coeffs {
  const f = FILTERS[filter]
  const scale = (in1 - in0) / outSize
  const filterscale = Math.max(scale, 1)
  const support = f.support * filterscale
  const ksize = Math.ceil(support) * 2 + 1
  const bounds = new Int32Array(outSize * 2)
  const kk = new Int32Array(outSize * ksize)
  const pre = new Float64Array(ksize)
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale
    const ss = 1 / filterscale
    let xmin = Math.trunc(center - support + 0.5)
    if (xmin < 0) xmin = 0
    let xmax = Math.trunc(center + support + 0.5)
    if (xmax > inSize) xmax = inSize
    xmax -= xmin
    let ww = 0
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss)
      pre[x] = w
      ww += w
    }
    for (let x = 0; x < ksize; x++) {
      let v = x < xmax ? (pre[x] as number) : 0
      if (x < xmax && ww !== 0) v /= ww
      kk[xx * ksize + x] =
        v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS))
    }
    bounds[xx * 2] = xmin
    bounds[xx * 2 + 1] = xmax
  }
  return { bounds, kk, ksize }
}

function clip8(v: number): number {
  if (v >= 1 << (PRECISION_BITS + 8)) return 255
  if (v <= 0) return 0
  return Math.floor(v / (1 << PRECISION_BITS))
}

function resampleAxis(
  img: RawImage,
  outSize: number,
  box0: number,
  box1: number,
  filter: PilFilter,
  horizontal: boolean,
): RawImage {
  const { width: w, height: h, channels: ch } = img
  const inSize = horizontal ? w : h
  const { bounds, kk, ksize } = precomputeCoeffs(inSize, box0, box1, outSize, filter)
  const ow = horizontal ? outSize : w
  const oh = horizontal ? h : outSize
  const out = new Uint8Array(ow * oh * ch)
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const pos = horizontal ? x : y
      const min = bounds[pos * 2] as number
      const cnt = bounds[pos * 2 + 1] as number
      for (let c = 0; c < ch; c++) {
        let ss = 1 << (PRECISION_BITS - 1)
        for (let k = 0; k < cnt; k++) {
          const sx = horizontal ? min + k : x
          const sy = horizontal ? y : min + k
          ss += (img.data[(sy * w + sx) * ch + c] as number) * (kk[pos * ksize + k] as number)
        }
        out[(y * ow + x) * ch + c] = clip8(ss)
      }
    }
  }
  return { ...img, data: out, width: ow, height: oh }
}

/**
 * `Image.resize((width, height), filter, box)` for 8-bit images, including degenerate boxes: a zero-height box
 * (A1111 "resize and fill" strips) samples the Lanczos kernel at the box edge.
 */
export function pilResize(
  img: RawImage,
  width: number,
  height: number,
  filter: PilFilter,
  box: [number, number, number, number] = [0, 0, img.width, img.height],
): RawImage {
  const [bx0, by0, bx1, by1] = box
  const needH = width !== img.width || bx0 !== 0 || bx1 !== width
  const needV = height !== img.height || by0 !== 0 || by1 !== height
  let cur = img
  if (needH) cur = resampleAxis(cur, width, bx0, bx1, filter, true)
  if (needV) cur = resampleAxis(cur, height, by0, by1, filter, false)
  if (cur === img) return { ...img, data: img.data.slice() }
  return cur
}

/**
 * A1111 `images.flatten`: composite an RGBA image onto an opaque background (default white, A1111's
 * img2img_background_color) with Pillow's alpha_composite; RGB images are returned as they are, masks as grey RGB.
 */
export function flattenAlpha(
  img: RawImage,
  background: { r: number; g: number; b: number } = { r: 255, g: 255, b: 255 },
): RawImage {
  if (img.channels !== 4) {
    if (img.channels === 3) return img
    const n = img.width * img.height
    const rgb = new Uint8Array(n * 3)
    for (let p = 0; p < n; p++) rgb.fill(img.data[p] as number, p * 3, p * 3 + 3)
    return { data: rgb, width: img.width, height: img.height, channels: 3 }
  }
  const n = img.width * img.height
  const canvas = new Uint8Array(n * 4)
  for (let p = 0; p < n; p++) canvas.set([background.r, background.g, background.b, 255], p * 4)
  alphaCompositeInPlace(canvas, img.data)
  const rgb = new Uint8Array(n * 3)
  for (let p = 0; p < n; p++) rgb.set(canvas.subarray(p * 4, p * 4 + 3), p * 3)
  return { data: rgb, width: img.width, height: img.height, channels: 3 }
}
