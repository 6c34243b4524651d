import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { PickleBuilder, zipStored } from '../../model-formats/pickle/torch-writer'
import { SafetensorsFile, writeSafetensors } from '../../model-formats/safetensors'
import type { TensorToWrite } from '../../model-formats/safetensors'
import {
  assertAdapterFitsUnet,
  describeIpAdapter,
  IpAdapterError,
  loadIpAdapter,
  probeIpAdapter,
} from './adapter'
import { appendImageTokens, imagePromptRule, withImageTokens } from './image-prompt'
import {
  hasMidjourneyImages,
  iwToScale,
  MidjourneyPromptError,
  parseMidjourneyImages,
  scaleToIw,
} from './midjourney'
import {
  clipPixelValues,
  clipPreprocessConfig,
  configFromPreprocessorJson,
  resizeOutputSize,
} from './preprocess'
import { combineEmbeds } from './projection'

// The seeded tiny IP-Adapter (bench/fixtures/tiny-models.ts; no ../shared needed).
const ADAPTER = (await ensureTinyModels()).ipAdapter

let tmp = ''
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ip-'))
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('Midjourney --iw and image prompts', () => {
  it('maps --iw 0..3 onto the adapter scale through (0,0), (1,0.5), (3,1)', () => {
    expect([0, 0.5, 1, 2, 3].map(iwToScale)).toEqual([0, 0.25, 0.5, 0.75, 1])
    for (const iw of [0, 0.3, 1, 1.7, 3]) expect(scaleToIw(iwToScale(iw))).toBeCloseTo(iw, 12)
    expect(() => iwToScale(3.5)).toThrow(/range 0–3/)
  })

  it('splits leading image references, text and flags', () => {
    const ids = new Set(['00012-5'])
    const isRef = (t: string): boolean => ids.has(t)
    const r = parseMidjourneyImages('https://x.org/a.png 00012-5 a castle at dusk --iw 2 --ar 2:3', isRef)
    expect(r.images).toEqual(['https://x.org/a.png', '00012-5'])
    expect(r.text).toBe('a castle at dusk --ar 2:3')
    expect(r).toMatchObject({ blend: false, iw: 2, scale: 0.75 })
    // MJ's default --iw 1 with text; an image-only prompt runs at full weight
    expect(parseMidjourneyImages('https://x.org/a.png a cat').scale).toBe(0.5)
    expect(parseMidjourneyImages('https://x.org/a.png https://x.org/b.png').scale).toBe(1)
    expect(parseMidjourneyImages('https://x.org/a.png --iw 0.5').scale).toBe(0.25)
    // a reference after the text is text
    expect(parseMidjourneyImages('a cat https://x.org/a.png').images).toEqual([])
    expect(hasMidjourneyImages('a cat')).toBe(false)
    expect(hasMidjourneyImages('https://x.org/a.png a cat')).toBe(true)
    expect(hasMidjourneyImages('00012-5 a cat', isRef)).toBe(true)
    expect(hasMidjourneyImages('/blend a b')).toBe(true)
    expect(parseMidjourneyImages('a cat --iw 1').warnings[0]).toMatch(/without an image prompt/)
  })

  it('/blend takes 2-5 images, no text, scale 1, --dimensions', () => {
    const r = parseMidjourneyImages('/blend https://x/a.png https://x/b.png --dimensions portrait')
    expect(r).toMatchObject({ blend: true, scale: 1, aspect: { width: 2, height: 3 }, text: '' })
    expect(r.images).toHaveLength(2)
    expect(() => parseMidjourneyImages('/blend https://x/a.png')).toThrow(MidjourneyPromptError)
    expect(() => parseMidjourneyImages(`/blend ${'https://x/a.png '.repeat(6)}`)).toThrow(/2 to 5/)
    expect(() => parseMidjourneyImages('/blend https://x/a.png https://x/b.png a dog')).toThrow(/only images/)
    expect(() => parseMidjourneyImages('/blend https://x/a https://x/b --dimensions wide')).toThrow(
      /portrait/,
    )
    expect(() => parseMidjourneyImages('https://x/a.png a cat --iw 4')).toThrow(/outside/)
    expect(() => parseMidjourneyImages('https://x/a.png a cat --iw')).toThrow(/expects a number/)
  })
})

describe('image prompt weights and token layout', () => {
  it('scale = the largest weight, weight 0 leaves an image out', () => {
    expect(imagePromptRule([0.6])).toEqual({ scale: 0.6, active: [0] })
    expect(imagePromptRule([1, 0, 0.5])).toEqual({ scale: 1, active: [0, 2] })
    expect(imagePromptRule([0, 0])).toEqual({ scale: 0, active: [] })
    expect(() => imagePromptRule([-1])).toThrow(RangeError)
  })

  it('combines embeddings by normalised weights (equal weights = mean)', () => {
    const e = Float32Array.from([1, 2, 3, 5])
    expect([...combineEmbeds(e, 2)]).toEqual([2, 3.5])
    expect([...combineEmbeds(e, 2, [3, 1])]).toEqual([1.5, 2.75])
    expect(() => combineEmbeds(e, 2, [0, 0])).toThrow(/add up to 0/)
  })

  it('uncond rows get the unconditional tokens, every cond row (AND blocks, batch) the image tokens', () => {
    const L = 2
    const D = 3
    const rows = 3 * 2 // uncond, two AND blocks; batch 2
    const ctx = new ort.Tensor('float32', new Float32Array(rows * L * D).fill(7), [rows, L, D])
    const t = { cond: new Float32Array(D).fill(1), uncond: new Float32Array(D).fill(-1), tokens: 1, width: D }
    const out = withImageTokens(
      { context: ctx, condWeights: [1, 0.5], withUncond: true, tokenCount: 0, loras: [], warnings: [] },
      { ...t, scale: 1, embeds: new Float32Array(), combined: new Float32Array() },
    ).context
    expect(out.dims).toEqual([rows, L + 1, D])
    const data = out.data as Float32Array
    const tokenOf = (r: number): number => data[(r * (L + 1) + L) * D] as number
    expect([0, 1, 2, 3, 4, 5].map(tokenOf)).toEqual([-1, -1, 1, 1, 1, 1])
    expect(data[0]).toBe(7)
    const noCfg = appendImageTokens(new ort.Tensor('float32', new Float32Array(L * D), [1, L, D]), t, {
      batch: 1,
      withUncond: false,
    })
    expect((noCfg.data as Float32Array)[L * D]).toBe(1)
    expect(() => appendImageTokens(ctx, { ...t, width: 4 }, { batch: 2, withUncond: true })).toThrow(
      /does not fit/,
    )
  })
})

describe('CLIPImageProcessor geometry', () => {
  it('resizes the shortest edge (long edge truncated) and crops the centre', () => {
    expect(resizeOutputSize(480, 640, 224)).toEqual([224, 298])
    expect(resizeOutputSize(640, 480, 224)).toEqual([298, 224])
    expect(resizeOutputSize(100, 100, 224)).toEqual([224, 224])
    const cfg = configFromPreprocessorJson(
      { size: { shortest_edge: 4 }, crop_size: { height: 2, width: 2 } },
      9,
    )
    expect(cfg).toMatchObject({ size: 4, cropHeight: 2, cropWidth: 2 })
    // a 4x8 image: no resize, crop rows 1..2, columns 3..4
    const img = { width: 8, height: 4, channels: 3 as const, data: new Uint8Array(4 * 8 * 3) }
    for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) img.data[(y * 8 + x) * 3] = y * 10 + x
    const px = clipPixelValues(img, cfg)
    const f = Math.fround
    const v = (u: number): number => f(f(f(u / 255) - f(0.48145466)) / f(0.26862954))
    expect([...px.subarray(0, 4)]).toEqual([v(13), v(14), v(23), v(24)])
    expect(clipPreprocessConfig(224)).toMatchObject({ size: 224, cropHeight: 224 })
  })
})

/** The original ip-adapter_sd15.bin layout: {"image_proj": OrderedDict, "ip_adapter": OrderedDict}. */
function nestedTorchFile(
  groups: [string, [string, { shape: number[]; data: Float32Array }][]][],
): Uint8Array {
  const p = new PickleBuilder().proto(2).emptyDict()
  const blobs: Uint8Array[] = []
  let key = 0
  for (const [group, tensors] of groups) {
    p.str(group).global('collections', 'OrderedDict').emptyTuple().reduce().mark()
    for (const [name, t] of tensors) {
      const numel = t.shape.reduce((a, b) => a * b, 1)
      p.str(name).global('torch._utils', '_rebuild_tensor_v2').mark()
      p.mark().str('storage').global('torch', 'FloatStorage').str(String(key)).str('cpu').int(numel).tuple()
      p.binpersid().int(0)
      p.mark()
      for (const d of t.shape) p.int(d)
      p.tuple().mark()
      for (let i = 0; i < t.shape.length; i++) p.int(t.shape.slice(i + 1).reduce((a, b) => a * b, 1))
      p.tuple().op(0x89).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce()
      blobs.push(new Uint8Array(t.data.buffer.slice(0)))
      key++
    }
    p.setitems().setitem()
  }
  return zipStored([
    ['archive/data.pkl', p.stop().bytes()],
    ...blobs.map((b, i): [string, Uint8Array] => [`archive/data/${i}`, b]),
    ['archive/version', new TextEncoder().encode('3\n')],
  ])
}

describe('IP-Adapter files', () => {
  it('reads the nested .bin layout through the safe unpickler, identical to the safetensors file', async () => {
    const st = await SafetensorsFile.open(ADAPTER)
    const groups = new Map<string, [string, { shape: number[]; data: Float32Array }][]>()
    for (const k of st.keys()) {
      const [g = '', ...rest] = k.split('.')
      groups.set(g, [
        ...(groups.get(g) ?? []),
        [rest.join('.'), { shape: st.info(k).shape, data: await st.readFloat32(k) }],
      ])
    }
    await st.close()
    const bin = path.join(tmp, 'ip-adapter_tiny.bin')
    fs.writeFileSync(bin, nestedTorchFile([...groups]))
    const a = await loadIpAdapter(ADAPTER)
    const b = await loadIpAdapter(bin)
    expect(b).toMatchObject({
      tokens: a.tokens,
      crossAttentionDim: 64,
      clipEmbeddingsDim: 48,
      layers: a.layers,
    })
    expect([...b.proj.weight]).toEqual([...a.proj.weight])
    for (const [k, t] of a.kv) {
      const u = b.kv.get(k)
      expect(u?.shape).toEqual(t.shape)
      // fp16 bits in the safetensors file, float32 in the .bin: same values
      const f =
        t.data instanceof Uint16Array
          ? (await import('../../model-formats/safetensors')).f16ToF32(t.data)
          : t.data
      expect([...(u?.data as Float32Array)]).toEqual([...f])
    }
    expect((await probeIpAdapter(bin)).layers).toHaveLength(16)
  })

  it('refuses Plus / Face adapters and other files with their names, and checks the fit with a UNet', async () => {
    const shapes = (keys: [string, number[]][]): Map<string, number[]> => new Map(keys)
    expect(() => describeIpAdapter('x.safetensors', shapes([['a', [1]]]))).toThrow(/not an IP-Adapter/)
    const plus = shapes([
      ['image_proj.latents', [1, 16, 768]],
      ['ip_adapter.1.to_k_ip.weight', [320, 768]],
    ])
    expect(() => describeIpAdapter('plus.bin', plus)).toThrow(/Plus/)
    const face = shapes([
      ['image_proj.proj.0.weight', [1024, 1024]],
      ['ip_adapter.1.to_k_ip.weight', [320, 768]],
    ])
    expect(() => describeIpAdapter('face.bin', face)).toThrow(/Full-Face|FaceID/)
    const info = await probeIpAdapter(ADAPTER)
    const layers = info.layers.map((l) => ({ ...l, prefix: `layer${l.n}` }))
    expect(() => assertAdapterFitsUnet(info, { crossAttentionDim: 64, layers })).not.toThrow()
    expect(() =>
      assertAdapterFitsUnet(info, { crossAttentionDim: 768, layers, label: 'sd15.safetensors' }),
    ).toThrow(IpAdapterError)
    expect(() => assertAdapterFitsUnet(info, { crossAttentionDim: 64, layers: layers.slice(1) })).toThrow(
      /16 decoupled attention layers but .* 15/,
    )
    const wide = layers.map((l, i) => (i === 0 ? { ...l, hidden: 320 } : l))
    expect(() => assertAdapterFitsUnet(info, { crossAttentionDim: 64, layers: wide })).toThrow(/320 wide/)
    // a truncated layer set (to_k without to_v)
    const broken: Record<string, TensorToWrite> = {
      'image_proj.proj.weight': { dtype: 'F32', shape: [8, 3], data: new Float32Array(24) },
      'image_proj.proj.bias': { dtype: 'F32', shape: [8], data: new Float32Array(8) },
      'image_proj.norm.weight': { dtype: 'F32', shape: [4], data: new Float32Array(4) },
      'image_proj.norm.bias': { dtype: 'F32', shape: [4], data: new Float32Array(4) },
      'ip_adapter.1.to_k_ip.weight': { dtype: 'F32', shape: [2, 4], data: new Float32Array(8) },
    }
    const f = path.join(tmp, 'broken.safetensors')
    await writeSafetensors(f, broken)
    await expect(probeIpAdapter(f)).rejects.toThrow(/layer 1 has to_k_ip only/)
  })
})
