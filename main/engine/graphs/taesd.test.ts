import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { buildTaesdDecoder, buildTaesdEncoder, taesdKeyMap, taesdParts } from './taesd'
import { InlineWeights } from './weights'

/**
 * The TAESD graphs against a straightforward JS implementation of the published architecture
 * (madebyollin/taesd taesd.py, diffusers AutoencoderTiny), written here independently of the graph code:
 * plain loops for conv / ReLU / nearest upsampling over random weights.
 */

type T = { c: number; h: number; w: number; d: Float32Array }
type W = Map<string, { shape: number[]; data: Float32Array }>

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function conv(
  x: T,
  wt: Float32Array,
  bias: Float32Array | undefined,
  cout: number,
  k: number,
  stride: number,
): T {
  const pad = (k - 1) / 2
  const ho = Math.floor((x.h + 2 * pad - k) / stride) + 1
  const wo = Math.floor((x.w + 2 * pad - k) / stride) + 1
  const out = new Float32Array(cout * ho * wo)
  for (let o = 0; o < cout; o++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++) {
        let acc = bias ? (bias[o] as number) : 0
        for (let c = 0; c < x.c; c++)
          for (let a = 0; a < k; a++) {
            const y = i * stride + a - pad
            if (y < 0 || y >= x.h) continue
            for (let b = 0; b < k; b++) {
              const xx = j * stride + b - pad
              if (xx < 0 || xx >= x.w) continue
              acc +=
                (wt[((o * x.c + c) * k + a) * k + b] as number) * (x.d[(c * x.h + y) * x.w + xx] as number)
            }
          }
        out[(o * ho + i) * wo + j] = acc
      }
  return { c: cout, h: ho, w: wo, d: out }
}

const relu = (x: T): T => ({ ...x, d: x.d.map((v) => Math.max(0, v)) })
const add = (a: T, b: T): T => ({ ...a, d: a.d.map((v, i) => v + (b.d[i] as number)) })
function up(x: T): T {
  const d = new Float32Array(x.c * x.h * 2 * x.w * 2)
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < x.h * 2; i++)
      for (let j = 0; j < x.w * 2; j++)
        d[(c * x.h * 2 + i) * x.w * 2 + j] = x.d[(c * x.h + (i >> 1)) * x.w + (j >> 1)] as number
  return { c: x.c, h: x.h * 2, w: x.w * 2, d }
}

/** Random weights for one nn.Conv2d, stored under diffusers' name. */
function addConv(
  ws: W,
  r: () => number,
  name: string,
  cin: number,
  cout: number,
  k: number,
  bias: boolean,
): void {
  const bound = 1 / Math.sqrt(cin * k * k)
  ws.set(`${name}.weight`, {
    shape: [cout, cin, k, k],
    data: Float32Array.from({ length: cout * cin * k * k }, () => (2 * r() - 1) * bound * 1.7),
  })
  if (bias)
    ws.set(`${name}.bias`, {
      shape: [cout],
      data: Float32Array.from({ length: cout }, () => (2 * r() - 1) * 0.1),
    })
}

function refConv(ws: W, name: string, x: T, stride = 1): T {
  const wt = ws.get(`${name}.weight`)
  if (!wt) throw new Error(`no ${name}`)
  return conv(x, wt.data, ws.get(`${name}.bias`)?.data, wt.shape[0] as number, wt.shape[2] as number, stride)
}

function refBlock(ws: W, p: string, x: T): T {
  let h = relu(refConv(ws, `${p}.conv.0`, x))
  h = relu(refConv(ws, `${p}.conv.2`, h))
  h = refConv(ws, `${p}.conv.4`, h)
  return relu(add(h, ws.has(`${p}.skip.weight`) ? refConv(ws, `${p}.skip`, x) : x))
}

/** Decoder weights and the reference forward, as taesd.py's Decoder lists its modules (diffusers indices). */
function decoder(ws: W, r: () => number, c: number): (z: T) => T {
  const steps: ((x: T) => T)[] = []
  let i = 0
  const convL = (cin: number, cout: number, bias: boolean): void => {
    const name = `decoder.layers.${i++}`
    addConv(ws, r, name, cin, cout, 3, bias)
    steps.push((x) => refConv(ws, name, x))
  }
  const blockL = (): void => {
    const p = `decoder.layers.${i++}`
    for (const k of [0, 2, 4]) addConv(ws, r, `${p}.conv.${k}`, c, c, 3, true)
    steps.push((x) => refBlock(ws, p, x))
  }
  convL(4, c, true)
  i++
  steps.push(relu)
  for (const [n, last] of [
    [3, false],
    [3, false],
    [3, false],
    [1, true],
  ] as const) {
    for (let j = 0; j < n; j++) blockL()
    if (!last) {
      i++
      steps.push(up)
    }
    convL(c, last ? 3 : c, last)
  }
  return (z) => {
    let x: T = { ...z, d: z.d.map((v) => Math.tanh(v / 3) * 3) }
    for (const s of steps) x = s(x)
    return { ...x, d: x.d.map((v) => v * 2 - 1) }
  }
}

function encoder(ws: W, r: () => number, c: number): (img: T) => T {
  const steps: ((x: T) => T)[] = []
  let i = 0
  for (const [n, first] of [
    [1, true],
    [3, false],
    [3, false],
    [3, false],
  ] as const) {
    const name = `encoder.layers.${i++}`
    addConv(ws, r, name, first ? 3 : c, c, 3, first)
    steps.push((x) => refConv(ws, name, x, first ? 1 : 2))
    for (let j = 0; j < n; j++) {
      const p = `encoder.layers.${i++}`
      for (const k of [0, 2, 4]) addConv(ws, r, `${p}.conv.${k}`, c, c, 3, true)
      steps.push((x) => refBlock(ws, p, x))
    }
  }
  const out = `encoder.layers.${i}`
  addConv(ws, r, out, c, 4, 3, true)
  steps.push((x) => refConv(ws, out, x))
  return (img) => {
    let x: T = { ...img, d: img.d.map((v) => (v + 1) / 2) }
    for (const s of steps) x = s(x)
    return x
  }
}

async function runGraph(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(bytes)
  try {
    return Object.values(await s.run(feeds))[0] as ort.Tensor
  } finally {
    await s.release()
  }
}

describe('TAESD graphs', () => {
  it('decoder matches the published architecture on random weights (width 16, 5x3 latents)', async () => {
    const ws: W = new Map()
    const r = rng(1)
    const ref = decoder(ws, r, 16)
    const z: T = { c: 4, h: 5, w: 3, d: Float32Array.from({ length: 60 }, () => (2 * r() - 1) * 4) }
    const want = ref(z)
    expect([want.c, want.h, want.w]).toEqual([3, 40, 24])
    const g = buildTaesdDecoder(new InlineWeights(ws))
    const got = await runGraph(g.encode(), { latent_sample: new ort.Tensor('float32', z.d, [1, 4, 5, 3]) })
    expect(got.dims).toEqual([1, 3, 40, 24])
    const spread = Math.max(...want.d) - Math.min(...want.d)
    expect(spread).toBeGreaterThan(0.1)
    expect(maxAbsDiff(got.data as Float32Array, want.d)).toBeLessThan(1e-4 * Math.max(1, spread))
  })

  it('encoder matches the published architecture on random weights (width 16, 24x16 image)', async () => {
    const ws: W = new Map()
    const r = rng(2)
    const ref = encoder(ws, r, 16)
    const img: T = { c: 3, h: 24, w: 16, d: Float32Array.from({ length: 3 * 24 * 16 }, () => 2 * r() - 1) }
    const want = ref(img)
    expect([want.c, want.h, want.w]).toEqual([4, 3, 2])
    const g = buildTaesdEncoder(new InlineWeights(ws))
    const got = await runGraph(g.encode(), { image: new ort.Tensor('float32', img.d, [1, 3, 24, 16]) })
    expect(got.dims).toEqual([1, 4, 3, 2])
    expect(maxAbsDiff(got.data as Float32Array, want.d)).toBeLessThan(1e-4)
    expect(want.d.some((v) => Math.abs(v) > 1e-3)).toBe(true)
  })

  it('maps madebyollin file keys and tells the halves apart', () => {
    expect(taesdKeyMap('1.weight', 'decoder')).toBe('decoder.layers.0.weight')
    expect(taesdKeyMap('3.conv.4.bias', 'decoder')).toBe('decoder.layers.2.conv.4.bias')
    expect(taesdKeyMap('0.weight', 'decoder')).toBeUndefined()
    expect(taesdKeyMap('14.weight', 'encoder')).toBe('encoder.layers.14.weight')
    expect(taesdKeyMap('decoder.layers.18.bias')).toBe('decoder.layers.18.bias')
    expect(taesdKeyMap('1.weight')).toBeUndefined()
    const ws: W = new Map()
    decoder(ws, rng(3), 4)
    expect(taesdParts(ws.keys())).toEqual({ decoder: true, encoder: false })
    encoder(ws, rng(4), 4)
    expect(taesdParts(ws.keys())).toEqual({ decoder: true, encoder: true })
  })
})
