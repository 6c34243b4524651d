import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { torchSaveZip } from '../../model-formats/pickle/torch-writer'
import { writeSafetensors } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import type { UpscalerArch } from '../../model-formats/probe/upscaler'
import { describeArch, detectArch } from '../../model-formats/probe/upscaler'
import { upscalerMacs } from './graph'
import type { FloatImage, TileRunner } from './model'
import { UpscalerModel } from './model'
import {
  enhanceFloat,
  enhanceUint8,
  padForModel,
  planTiles,
  reflectIndex,
  roundHalfEven,
  toUint8,
  toUint8Hwc,
} from './tiling'
import { loadUpscalerWeights, probeUpscaler } from './weights'

const shared = path.resolve(repoRoot(), '../shared/oracle-upscale')
const haveOracle = existsSync(path.join(shared, 'manifest.json'))
if (!haveOracle) console.warn(`skipping oracle upscaler file tests: ${shared} not found`)

let tmp = ''
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atelier-upscale-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x100000000
  }
}

type Sd = Map<string, { shape: number[]; data: Float32Array }>

// ---- a plain TypeScript forward pass, written from the upstream PyTorch code, to check the graphs ----

function conv3(x: FloatImage, w: { shape: number[]; data: Float32Array }, b: Float32Array): FloatImage {
  const [o = 0, i = 0] = w.shape
  const { height: h, width: wd } = x
  const out = new Float32Array(o * h * wd)
  for (let oc = 0; oc < o; oc++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < wd; xx++) {
        let s = b[oc] as number
        for (let ic = 0; ic < i; ic++)
          for (let ky = 0; ky < 3; ky++) {
            const yy = y + ky - 1
            if (yy < 0 || yy >= h) continue
            for (let kx = 0; kx < 3; kx++) {
              const xs = xx + kx - 1
              if (xs < 0 || xs >= wd) continue
              s +=
                (w.data[((oc * i + ic) * 3 + ky) * 3 + kx] as number) *
                (x.data[(ic * h + yy) * wd + xs] as number)
            }
          }
        out[(oc * h + y) * wd + xx] = s
      }
  return { data: out, channels: o, height: h, width: wd }
}

const map = (x: FloatImage, f: (v: number, c: number) => number): FloatImage => {
  const plane = x.height * x.width
  return { ...x, data: x.data.map((v, i) => f(v, Math.floor(i / plane))) }
}
const lrelu = (x: FloatImage, s: number): FloatImage => map(x, (v) => (v >= 0 ? v : v * s))
const add = (a: FloatImage, b: FloatImage, k = 1): FloatImage => ({
  ...a,
  data: a.data.map((v, i) => v * k + (b.data[i] as number)),
})
const cat = (xs: FloatImage[]): FloatImage => {
  const data = new Float32Array(xs.reduce((n, x) => n + x.data.length, 0))
  let p = 0
  for (const x of xs) {
    data.set(x.data, p)
    p += x.data.length
  }
  return {
    data,
    channels: xs.reduce((n, x) => n + x.channels, 0),
    height: xs[0]?.height ?? 0,
    width: xs[0]?.width ?? 0,
  }
}
function nearest(x: FloatImage, f: number): FloatImage {
  const H = x.height * f
  const W = x.width * f
  const out = new Float32Array(x.channels * H * W)
  for (let c = 0; c < x.channels; c++)
    for (let y = 0; y < H; y++)
      for (let xx = 0; xx < W; xx++)
        out[(c * H + y) * W + xx] = x.data[
          (c * x.height + Math.floor(y / f)) * x.width + Math.floor(xx / f)
        ] as number
  return { data: out, channels: x.channels, height: H, width: W }
}
function unshuffle(x: FloatImage, r: number): FloatImage {
  const h = x.height / r
  const w = x.width / r
  const C = x.channels * r * r
  const out = new Float32Array(C * h * w)
  for (let c = 0; c < x.channels; c++)
    for (let dy = 0; dy < r; dy++)
      for (let dx = 0; dx < r; dx++)
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++)
            out[((c * r * r + dy * r + dx) * h + i) * w + j] = x.data[
              (c * x.height + r * i + dy) * x.width + r * j + dx
            ] as number
  return { data: out, channels: C, height: h, width: w }
}
function shuffle(x: FloatImage, r: number): FloatImage {
  const C = x.channels / (r * r)
  const H = x.height * r
  const W = x.width * r
  const out = new Float32Array(C * H * W)
  for (let c = 0; c < C; c++)
    for (let dy = 0; dy < r; dy++)
      for (let dx = 0; dx < r; dx++)
        for (let i = 0; i < x.height; i++)
          for (let j = 0; j < x.width; j++)
            out[(c * H + r * i + dy) * W + r * j + dx] = x.data[
              ((c * r * r + dy * r + dx) * x.height + i) * x.width + j
            ] as number
  return { data: out, channels: C, height: H, width: W }
}

function refForward(arch: UpscalerArch, sd: Sd, x: FloatImage): FloatImage {
  const t = (k: string): { shape: number[]; data: Float32Array } =>
    sd.get(k) ??
    (() => {
      throw new Error(k)
    })()
  const c = (k: string, v: FloatImage): FloatImage => conv3(v, t(`${k}.weight`), t(`${k}.bias`).data)
  if (arch.kind === 'srvgg') {
    let h = x
    const last = 2 * (arch.numConv + 1)
    for (let i = 0; i <= last; i += 2) {
      h = c(`body.${i}`, h)
      if (i === last) break
      const slope = t(`body.${i + 1}.weight`).data
      h = map(h, (v, ch) => (v >= 0 ? v : v * (slope[ch] as number)))
    }
    return add(shuffle(h, arch.scale), nearest(x, arch.scale))
  }
  let h = arch.unshuffle > 1 ? unshuffle(x, arch.unshuffle) : x
  const feat = c('conv_first', h)
  h = feat
  for (let n = 0; n < arch.numBlock; n++) {
    let r = h
    for (let m = 1; m <= 3; m++) {
      const p = `body.${n}.rdb${m}`
      const fs = [r]
      for (let k = 1; k <= 4; k++) fs.push(lrelu(c(`${p}.conv${k}`, cat(fs)), 0.2))
      r = add(c(`${p}.conv5`, cat(fs)), r, 0.2)
    }
    h = add(r, h, 0.2)
  }
  h = add(c('conv_body', h), feat)
  arch.ups.forEach((u, i) => {
    h =
      u.mode === 'nearest'
        ? lrelu(c(`up.${i}`, nearest(h, u.factor)), 0.2)
        : lrelu(shuffle(c(`up.${i}`, h), u.factor), 0.2)
  })
  return c('conv_last', lrelu(c('conv_hr', h), 0.2))
}

// ---- synthetic models in every naming ----

function randomTensor(
  r: () => number,
  shape: number[],
  scale: number,
): { shape: number[]; data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1)
  return { shape, data: Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale) }
}

/** A canonical RRDBNet state dict (canonical = BasicSR names with up.I). */
function rrdbCanonical(
  seed: number,
  o: { inCh: number; nf: number; gc: number; nb: number; ups: number[] },
): Sd {
  const r = rng(seed)
  const sd: Sd = new Map()
  const conv = (k: string, out: number, inp: number): void => {
    sd.set(`${k}.weight`, randomTensor(r, [out, inp, 3, 3], 1 / Math.sqrt(inp * 9)))
    sd.set(`${k}.bias`, randomTensor(r, [out], 0.1))
  }
  conv('conv_first', o.nf, o.inCh)
  for (let n = 0; n < o.nb; n++)
    for (let m = 1; m <= 3; m++)
      for (let k = 1; k <= 5; k++)
        conv(`body.${n}.rdb${m}.conv${k}`, k < 5 ? o.gc : o.nf, o.nf + (k - 1) * o.gc)
  conv('conv_body', o.nf, o.nf)
  o.ups.forEach((f, i) => conv(`up.${i}`, o.nf * f, o.nf))
  conv('conv_hr', o.nf, o.nf)
  conv('conv_last', 3, o.nf)
  return sd
}

function rename(sd: Sd, f: (k: string) => string): Sd {
  return new Map([...sd].map(([k, v]) => [f(k), v]))
}

const toBasicsr = (k: string): string =>
  k.replace(/^up\.(\d+)\./, (_m, i: string) => `conv_up${Number(i) + 1}.`)
const to2019 = (k: string): string =>
  toBasicsr(k)
    .replace(/^body\.(\d+)\.rdb(\d)\./, 'RRDB_trunk.$1.RDB$2.')
    .replace(/^conv_body\./, 'trunk_conv.')
    .replace(/^conv_up(\d)\./, 'upconv$1.')
    .replace(/^conv_hr\./, 'HRconv.')
function to2018(nb: number, tail: number[]): (k: string) => string {
  return (k) => {
    const m = /^body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)$/.exec(k)
    if (m) return `model.1.sub.${m[1]}.RDB${m[2]}.conv${m[3]}.0.${m[4]}`
    const [name, s] = [k.slice(0, k.lastIndexOf('.')), k.slice(k.lastIndexOf('.') + 1)]
    if (name === 'conv_first') return `model.0.${s}`
    if (name === 'conv_body') return `model.1.sub.${nb}.${s}`
    const up = /^up\.(\d+)$/.exec(name)
    const idx = up ? Number(up[1]) : name === 'conv_hr' ? tail.length - 2 : tail.length - 1
    return `model.${tail[idx] as number}.${s}`
  }
}

async function saveSafetensors(file: string, sd: Sd): Promise<void> {
  await writeSafetensors(
    file,
    Object.fromEntries([...sd].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }])),
  )
}

function randomImage(seed: number, h: number, w: number): FloatImage {
  const r = rng(seed)
  return { data: Float32Array.from({ length: 3 * h * w }, () => r()), channels: 3, height: h, width: w }
}

describe('architectures from weights: graphs equal a plain forward pass', () => {
  const nb = 1
  const base = { nf: 4, gc: 2, nb }
  const variants: { name: string; ext: 'safetensors' | 'pth'; sd: () => Sd; scale: number; canonical: Sd }[] =
    []
  const addVariant = (
    name: string,
    ext: 'safetensors' | 'pth',
    canonical: Sd,
    f: (k: string) => string,
    scale: number,
  ): void => {
    variants.push({ name, ext, sd: () => rename(canonical, f), scale, canonical })
  }
  const x4 = rrdbCanonical(1, { ...base, inCh: 3, ups: [1, 1] })
  const x2 = rrdbCanonical(2, { ...base, inCh: 12, ups: [1, 1] })
  const x1 = rrdbCanonical(3, { ...base, inCh: 48, ups: [1, 1] })
  addVariant('basicsr-x4', 'safetensors', x4, toBasicsr, 4)
  addVariant('basicsr-x2', 'pth', x2, toBasicsr, 2)
  addVariant('basicsr-x1', 'safetensors', x1, toBasicsr, 1)
  addVariant('esrgan2019-x4', 'safetensors', x4, to2019, 4)
  addVariant('esrgan2018-x4', 'pth', x4, to2018(nb, [3, 6, 8, 10]), 4)
  addVariant(
    'esrgan2018-x2',
    'safetensors',
    rrdbCanonical(4, { ...base, inCh: 3, ups: [1] }),
    to2018(nb, [3, 5, 7]),
    2,
  )
  addVariant(
    'esrgan2018-3x',
    'safetensors',
    rrdbCanonical(4, { ...base, inCh: 3, ups: [1] }),
    to2018(nb, [3, 5, 7]),
    3,
  )
  addVariant(
    'esrgan2018-x1',
    'safetensors',
    rrdbCanonical(5, { ...base, inCh: 3, ups: [] }),
    to2018(nb, [2, 4]),
    1,
  )
  addVariant(
    'esrgan2018-x8',
    'safetensors',
    rrdbCanonical(6, { ...base, inCh: 3, ups: [1, 1, 1] }),
    to2018(nb, [3, 6, 9, 11, 13]),
    8,
  )
  addVariant(
    'esrgan2018-pixelshuffle-x4',
    'safetensors',
    rrdbCanonical(7, { ...base, inCh: 3, ups: [4, 4] }),
    to2018(nb, [2, 5, 8, 10]),
    4,
  )

  it.each(variants.map((v) => v.name))('%s', async (name) => {
    const v = variants.find((x) => x.name === name) as (typeof variants)[number]
    const file = path.join(tmp, `${name}.${v.ext}`)
    const sd = v.sd()
    if (v.ext === 'pth')
      await writeFile(
        file,
        torchSaveZip(
          [...sd].map(([k, t]) => [
            k,
            { dtype: 'F32' as const, shape: t.shape, bytes: new Uint8Array(t.data.buffer) },
          ]),
          { wrapper: 'params_ema' },
        ),
      )
    else await saveSafetensors(file, sd)
    const arch = await probeUpscaler(file)
    expect(arch?.scale).toBe(v.scale)
    const model = await UpscalerModel.load(file, { preference: 'cpu', threads: 1 })
    try {
      expect(model.scale).toBe(v.scale)
      const w = await loadUpscalerWeights(file)
      for (const [k, t] of v.canonical) expect(w.tensors.get(k)?.data, k).toEqual(t.data)
      const x = randomImage(11, 8, 8)
      const got = await model.run(x)
      const want = refForward(model.arch, v.canonical, x)
      expect([got.channels, got.height, got.width]).toEqual([3, 8 * v.scale, 8 * v.scale])
      expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-4)
    } finally {
      await model.release()
    }
  })

  it('SRVGGNetCompact x2 / x3 with PReLU', async () => {
    for (const scale of [2, 3]) {
      const r = rng(20 + scale)
      const nf = 4
      const numConv = 2
      const sd: Sd = new Map()
      const last = 2 * (numConv + 1)
      for (let i = 0; i <= last; i += 2) {
        const out = i === last ? 3 * scale * scale : nf
        const inp = i === 0 ? 3 : nf
        sd.set(`body.${i}.weight`, randomTensor(r, [out, inp, 3, 3], 0.3))
        sd.set(`body.${i}.bias`, randomTensor(r, [out], 0.1))
        if (i < last)
          sd.set(`body.${i + 1}.weight`, {
            shape: [nf],
            data: Float32Array.from({ length: nf }, () => r() * 0.5),
          })
      }
      const file = path.join(tmp, `srvgg-x${scale}.safetensors`)
      await saveSafetensors(file, sd)
      const model = await UpscalerModel.load(file, { preference: 'cpu', threads: 1 })
      expect(model.arch).toMatchObject({ kind: 'srvgg', scale, numConv, numFeat: nf, act: 'prelu' })
      const x = randomImage(5, 6, 7)
      const got = await model.run(x)
      expect(maxAbsDiff(got.data, refForward(model.arch, sd, x).data)).toBeLessThan(1e-4)
      await model.release()
    }
  })

  it('errors name the file and the problem', () => {
    expect(() => detectArch(new Map([['foo.weight', { shape: [1] }]]), '/x/thing.pth')).toThrow(
      /thing\.pth: not a supported upscaler/,
    )
    const bad = new Map([
      ['conv_first.weight', { shape: [4, 5, 3, 3] }],
      ['body.0.rdb1.conv1.weight', { shape: [2, 4, 3, 3] }],
    ])
    expect(() => detectArch(bad, 'm.safetensors')).toThrow(
      /m\.safetensors: an RRDBNet without conv_up1 \(m\.safetensors\)/,
    )
  })

  it.skipIf(!haveOracle)(
    'recognises every model file of the oracle set (.pth through the safe reader)',
    async () => {
      const expectArch: Record<string, string> = {
        'tiny-rrdb-x4.safetensors': 'RRDBNet x4 (16 features, 2 blocks, growth 8; basicsr names)',
        'tiny-rrdb-x4.pth': 'RRDBNet x4 (16 features, 2 blocks, growth 8; basicsr names)',
        'tiny-rrdb-x4-esrgan-old.pth': 'RRDBNet x4 (16 features, 2 blocks, growth 8; esrgan-2018 names)',
        'tiny-rrdb-x4-esrgan-old.safetensors':
          'RRDBNet x4 (16 features, 2 blocks, growth 8; esrgan-2018 names)',
        'tiny-rrdb-x4-esrgan-2019.safetensors':
          'RRDBNet x4 (16 features, 2 blocks, growth 8; esrgan-2019 names)',
        'tiny-rrdb-x2.safetensors':
          'RRDBNet x2 (16 features, 2 blocks, growth 8, pixel-unshuffle 2; basicsr names)',
        'tiny-srvgg-x4.safetensors': 'SRVGGNetCompact x4 (16 features, 4 convs, prelu)',
        'tiny-srvgg-x4.pth': 'SRVGGNetCompact x4 (16 features, 4 convs, prelu)',
      }
      for (const [f, want] of Object.entries(expectArch)) {
        const a = await probeUpscaler(path.join(shared, f))
        expect(a && describeArch(a), f).toBe(want)
      }
      expect(await probeUpscaler(path.join(shared, 'rrdb_x4.safetensors'))).toBeNull()
    },
  )

  it('FLOP count of a full-size RRDBNet x4', () => {
    const arch = detectArch(
      rename(rrdbCanonical(9, { nf: 64, gc: 32, nb: 1, inCh: 3, ups: [1, 1] }), toBasicsr),
    ).arch
    const full = { ...arch, numBlock: 23 } as UpscalerArch
    // 16.57 M MACs per LR pixel in the trunk + the x2/x4 convs.
    expect(upscalerMacs(full, 1, 1)).toBe(
      9 * (3 * 64 + 23 * 3 * 26624 + 64 * 64) + 4 * 9 * 64 * 64 + 16 * 9 * (64 * 64 + 64 * 64 + 64 * 3),
    )
  })
})

/** A pointwise stand-in model: nearest upscale times 2 (tiling must not change its result). */
const pointwise = (scale: number, multiple = 1): TileRunner & { calls: number[][] } => {
  const calls: number[][] = []
  return {
    scale,
    multiple,
    calls,
    run: (x) => {
      calls.push([x.height, x.width])
      return Promise.resolve(map(nearest(x, scale), (v) => v * 2 - 0.25))
    },
  }
}

describe('RealESRGANer tiling and padding', () => {
  it('plans the tiles of the oracle tiled case', () => {
    const t = planTiles(28, 40, 16, 4).map((r) => [
      [r.py0, r.py1],
      [r.px0, r.px1],
    ])
    expect(t).toEqual([
      [
        [0, 20],
        [0, 20],
      ],
      [
        [0, 20],
        [12, 36],
      ],
      [
        [0, 20],
        [28, 40],
      ],
      [
        [12, 28],
        [0, 20],
      ],
      [
        [12, 28],
        [12, 36],
      ],
      [
        [12, 28],
        [28, 40],
      ],
    ])
    expect(planTiles(5, 7, 0, 10)).toHaveLength(1)
  })

  it('reflect padding mirrors without repeating the edge (numpy "reflect")', () => {
    expect([0, 1, 2, 3, 4, 5].map((i) => reflectIndex(i, 4))).toEqual([0, 1, 2, 3, 2, 1])
    expect([0, 1, 2, 3, 4].map((i) => reflectIndex(i, 2))).toEqual([0, 1, 0, 1, 0])
    expect(reflectIndex(5, 1)).toBe(0)
    const img: FloatImage = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), channels: 1, height: 2, width: 3 }
    const { padded, modPadH, modPadW } = padForModel(img, 1, 2)
    expect([padded.height, padded.width, modPadH, modPadW]).toEqual([4, 4, 1, 0])
    expect(Array.from(padded.data)).toEqual([1, 2, 3, 2, 4, 5, 6, 5, 1, 2, 3, 2, 4, 5, 6, 5])
  })

  it('tiles reassemble exactly for a pointwise model; pads are cropped; progress counts tiles', async () => {
    const x = randomImage(3, 23, 17)
    const m = pointwise(4)
    const whole = await enhanceFloat(m, x, { tile: 0, tilePad: 0, prePad: 0 })
    const ticks: number[] = []
    const tiled = await enhanceFloat(m, x, {
      tile: 8,
      tilePad: 3,
      prePad: 2,
      onTile: (d, n) => ticks.push(d / n),
    })
    expect([tiled.height, tiled.width]).toEqual([92, 68])
    expect(maxAbsDiff(tiled.data, whole.data)).toBe(0)
    expect(ticks).toEqual(Array.from({ length: 12 }, (_, i) => (i + 1) / 12))
    const u8 = await enhanceUint8(m, x, { tile: 8, tilePad: 3, prePad: 0 })
    expect(Buffer.from(u8.data).equals(Buffer.from(toUint8Hwc(whole)))).toBe(true)
    // x2 models pad to even sizes (mod pad) and crop back.
    const two = pointwise(2, 2)
    const r = await enhanceFloat(two, x, { tile: 0, tilePad: 0, prePad: 0 })
    expect(two.calls[0]).toEqual([24, 18])
    expect([r.height, r.width]).toEqual([46, 34])
  })

  it('cancel stops before the next tile', async () => {
    const ac = new AbortController()
    const m = pointwise(2)
    const p = enhanceFloat(m, randomImage(1, 32, 32), {
      tile: 8,
      tilePad: 2,
      prePad: 0,
      signal: ac.signal,
      onTile: (d) => d === 2 && ac.abort(),
    })
    await expect(p).rejects.toThrow(/abort|cancel/i)
    expect(m.calls).toHaveLength(2)
  })

  it('uint8 conversion: clamp, float32 product, round half to even', () => {
    expect([0.5, 1.5, 2.5, 3.5, 1.4999, -0.2].map(roundHalfEven)).toEqual([0, 2, 2, 4, 1, -0])
    expect([-1, 0, 1, 2, 0.5].map(toUint8)).toEqual([0, 0, 255, 255, 128])
  })

  it.skipIf(!haveOracle)(
    'no visible seams: with the default 10 px pad, tiles match the whole image within 1 level',
    async () => {
      const m = await UpscalerModel.load(path.join(shared, 'tiny-rrdb-x4.pth'), {
        preference: 'cpu',
        threads: 1,
      })
      try {
        const n = 96
        const data = new Float32Array(3 * n * n)
        for (let c = 0; c < 3; c++)
          for (let y = 0; y < n; y++)
            for (let x = 0; x < n; x++)
              data[(c * n + y) * n + x] = 0.5 + 0.4 * Math.sin(x * 0.21 + c) * Math.cos(y * 0.17 - c)
        const img = { data, channels: 3, height: n, width: n }
        const whole = await enhanceUint8(m, img, { tile: 0, tilePad: 0, prePad: 0 })
        const tiled = await enhanceUint8(m, img, { tile: 32, tilePad: 10, prePad: 0 })
        let max = 0
        for (let i = 0; i < whole.data.length; i++)
          max = Math.max(max, Math.abs(tiled.data[i]! - whole.data[i]!))
        expect(max).toBeLessThanOrEqual(1)
        // Too little context does show: 4 px differs by several levels along the seams.
        const thin = await enhanceUint8(m, img, { tile: 32, tilePad: 4, prePad: 0 })
        let thinMax = 0
        for (let i = 0; i < whole.data.length; i++)
          thinMax = Math.max(thinMax, Math.abs(thin.data[i]! - whole.data[i]!))
        expect(thinMax).toBeGreaterThan(1)
      } finally {
        await m.release()
      }
    },
  )
})
