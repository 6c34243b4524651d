import { describe, expect, it } from 'vitest'
import {
  alphaBounds,
  cropRegion,
  expandCropRegion,
  fitView,
  floor8,
  onlyMaskedArea,
  sizeForAspect,
  snap8,
  stepsRun,
  toContent,
  zoomAt,
  zoomOutExtension,
} from './geometry'
import { History } from './history'

describe('snapping', () => {
  it('snaps to the nearest multiple of 8 with a floor', () => {
    expect(snap8(61)).toBe(64)
    expect(snap8(59)).toBe(56)
    expect(snap8(-5)).toBe(0)
    expect(snap8(3, 8)).toBe(8)
    expect(floor8(517)).toBe(512)
    expect(floor8(20)).toBe(64)
  })

  it('sizes aspect presets on multiples of 8 around base²', () => {
    expect(sizeForAspect(512, 1, 1)).toEqual({ width: 512, height: 512 })
    expect(sizeForAspect(512, 16, 9)).toEqual({ width: 680, height: 384 })
    expect(sizeForAspect(1024, 2, 3)).toEqual({ width: 840, height: 1256 })
  })

  it('zoom out ×2 splits the growth over both sides', () => {
    expect(zoomOutExtension(512, 384, 2)).toEqual({ left: 256, right: 256, top: 192, bottom: 192 })
    expect(zoomOutExtension(100, 100, 1.5)).toEqual({ left: 24, right: 24, top: 24, bottom: 24 })
  })
})

describe('A1111 only-masked crop region', () => {
  it('pads the bounding box and clamps to the image', () => {
    expect(cropRegion({ x1: 10, y1: 20, x2: 50, y2: 60 }, 32, 512, 512)).toEqual({
      x1: 0,
      y1: 0,
      x2: 82,
      y2: 92,
    })
    expect(cropRegion(null, 32, 512, 512)).toBeNull()
  })

  it('widens a tall crop to the processing aspect, centred', () => {
    // 40 wide x 100 tall, square processing: grow width by 60, 30 each side.
    expect(expandCropRegion({ x1: 200, y1: 100, x2: 240, y2: 200 }, 512, 512, 512, 512)).toEqual({
      x1: 170,
      y1: 100,
      x2: 270,
      y2: 200,
    })
  })

  it('heightens a wide crop and shifts it back inside the image', () => {
    // 200 x 50 at the bottom edge, square processing: 150 more rows; 75 below overflow and move up.
    expect(expandCropRegion({ x1: 0, y1: 450, x2: 200, y2: 500 }, 512, 512, 512, 512)).toEqual({
      x1: 0,
      y1: 312,
      x2: 200,
      y2: 512,
    })
  })

  it('matches A1111 for an odd difference (floor half before, rest after)', () => {
    // width 41 -> desired 100: diff 59, 29 before, 30 after.
    expect(expandCropRegion({ x1: 100, y1: 0, x2: 141, y2: 100 }, 64, 64, 512, 512)).toEqual({
      x1: 71,
      y1: 0,
      x2: 171,
      y2: 100,
    })
  })

  it('combines blur reach, padding and aspect', () => {
    // mask blur 4 reaches int(2.5*4+0.5) = 10 px; padding 32.
    const r = onlyMaskedArea(
      { x1: 100, y1: 100, x2: 120, y2: 140 },
      { blur: 4, padding: 32, procW: 512, procH: 512, imgW: 512, imgH: 512 },
    )
    // blurred 90..130 x 90..150 -> padded 58..162 x 58..182 (104 x 124) -> widened to 124 x 124
    expect(r).toEqual({ x1: 48, y1: 58, x2: 172, y2: 182 })
    expect(onlyMaskedArea(null, { blur: 4, padding: 32, procW: 8, procH: 8, imgW: 8, imgH: 8 })).toBeNull()
  })
})

describe('alpha bounds', () => {
  it('finds the box of non-transparent pixels (exclusive right/bottom)', () => {
    const w = 6
    const h = 5
    const data = new Uint8ClampedArray(w * h * 4)
    const set = (x: number, y: number): void => {
      data[(y * w + x) * 4 + 3] = 255
    }
    expect(alphaBounds(data, w, h)).toBeNull()
    set(2, 1)
    set(4, 3)
    expect(alphaBounds(data, w, h)).toEqual({ x1: 2, y1: 1, x2: 5, y2: 4 })
  })
})

describe('denoising strength steps', () => {
  it('follows the A1111 rule t_enc + 1 (diffusers: int(steps x strength)), or runs exact steps', () => {
    // A1111: t_enc + 1 (the README table of oracle-kdiff: 10 @ 0.6 -> 7, 20 @ 0.75 -> 16, 30 @ 0.3 -> 10)
    expect(stepsRun(10, 0.6, false)).toBe(7)
    expect(stepsRun(20, 0.75, false)).toBe(16)
    expect(stepsRun(30, 0.3, false)).toBe(10)
    expect(stepsRun(8, 1, false)).toBe(8)
    expect(stepsRun(20, 0.6, true)).toBe(20)
    // diffusers: int(steps x strength)
    expect(stepsRun(20, 0.3, false, true)).toBe(6)
    expect(stepsRun(25, 0.75, false, true)).toBe(18)
    expect(stepsRun(20, 1, false)).toBe(20)
    expect(stepsRun(20, 0, false)).toBe(0)
    expect(stepsRun(3, 0.3, false, true)).toBe(0)
    expect(stepsRun(3, 0.3, false)).toBe(1)
  })
})

describe('view transforms', () => {
  it('fits and centres content', () => {
    expect(fitView(1000, 500, 520, 520, 10)).toEqual({ scale: 0.5, x: 10, y: 135 })
  })

  it('zooms around the pointer', () => {
    const v = zoomAt({ scale: 1, x: 0, y: 0 }, 100, 50, 2)
    expect(v).toEqual({ scale: 2, x: -100, y: -50 })
    expect(toContent(v, 100, 50)).toEqual({ x: 100, y: 50 })
  })
})

describe('history', () => {
  it('undoes and redoes, and a new op clears the redo list', () => {
    const h = new History<string>()
    h.push('a')
    h.push('b')
    expect(h.undo()).toBe('b')
    expect(h.ops).toEqual(['a'])
    expect(h.redo()).toBe('b')
    expect(h.ops).toEqual(['a', 'b'])
    h.undo()
    h.push('c')
    expect(h.canRedo).toBe(false)
    expect(h.ops).toEqual(['a', 'c'])
  })

  it('drops the oldest beyond the limit', () => {
    const h = new History<number>(2)
    h.push(1)
    h.push(2)
    h.push(3)
    expect(h.ops).toEqual([2, 3])
  })
})
