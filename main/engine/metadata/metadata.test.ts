import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { encodePng } from '../image/codec'
import type { RawImage } from '../image/types'
import { formatInfotext, parseInfotext, quote, unquote, withA1111Defaults } from './infotext'
import type { GenerationParameters } from './infotext'
import { addParametersToPng, ATELIER_VERSION, encodePngWithParameters, readGenerationParameters } from './png'
import { crc32, encodeChunk, insertPngText, PngFormatError, readChunks, readPngText } from './png-chunks'

function testImage(w = 24, h = 16): RawImage {
  const data = new Uint8Array(w * h * 3)
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) % 256
  return { data, width: w, height: h, channels: 3 }
}

const FULL: GenerationParameters = {
  prompt: 'a (castle:1.2) on a hill, golden hour <lora:detail: 0.6>\nsecond line',
  negativePrompt: 'blurry, lowres\nugly',
  steps: 30,
  sampler: 'Euler a',
  scheduleType: 'Karras',
  cfgScale: 7.5,
  seed: 4294967295,
  width: 512,
  height: 768,
  modelHash: 'abcdef1234',
  model: 'dreamshaper_8',
  vaeHash: '735e4c3a44',
  vae: 'vae-ft-mse-840000-ema-pruned.safetensors',
  denoisingStrength: 0.6,
  exactSteps: true,
  clipSkip: 2,
  rng: 'CPU',
  maskMode: 'Inpaint not masked',
  maskBlur: 4,
  maskedContent: 'latent noise',
  inpaintArea: 'Only masked',
  maskedAreaPadding: 48,
  conditionalMaskWeight: 0.5,
  outpaint: { left: 64, top: 0, right: 128, bottom: 8 },
  outpaintOverlap: 32,
  loraHashes: [
    { name: 'detail', hash: '0123456789ab' },
    { name: 'style v2', hash: 'ba9876543210' },
  ],
  hashes: { model: 'abcdef1234', 'lora:detail': '0123456789ab' },
  civitaiResources: [
    { type: 'checkpoint', modelVersionId: 128713 },
    { type: 'lora', weight: 0.6, modelVersionId: 62833 },
    { type: 'lora', weight: 1, air: 'urn:air:sd1:lora:civitai:1@2' },
  ],
  version: 'atelier-0.1.0',
  extra: { 'Noise multiplier': '1.05', 'ADetailer prompt': 'a face, smiling', 'Hires upscale': '2' },
}

describe('quote / unquote (A1111 infotext_utils)', () => {
  it.each([
    ['plain', 'plain'],
    ['a, b', '"a, b"'],
    ['k: v', '"k: v"'],
    ['line\nbreak', '"line\\nbreak"'],
    ['say "hi", ok', '"say \\"hi\\", ok"'],
    ['ünïcödé, ✓', '"ünïcödé, ✓"'],
  ])('%j → %s', (v, q) => {
    expect(quote(v)).toBe(q)
    expect(unquote(q)).toBe(v)
  })
  it('unquote leaves malformed text alone', () => {
    expect(unquote('"abc')).toBe('"abc')
    expect(unquote('"\\x"')).toBe('"\\x"')
  })
})

describe('formatInfotext', () => {
  it('writes the A1111 layout with quoting', () => {
    const text = formatInfotext({
      prompt: 'a cat',
      negativePrompt: 'dog',
      steps: 30,
      sampler: 'Euler a',
      scheduleType: 'Karras',
      cfgScale: 7,
      seed: 1,
      width: 512,
      height: 512,
      modelHash: 'abcdef1234',
      model: 'name',
      denoisingStrength: 0.6,
      maskBlur: 4,
      loraHashes: [
        { name: 'a:b,c', hash: '111111111111' },
        { name: 'd', hash: '222222222222' },
      ],
      version: 'atelier-0.1.0',
      civitaiResources: [{ type: 'checkpoint', modelVersionId: 5 }],
      extra: {},
    })
    expect(text).toBe(
      'a cat\nNegative prompt: dog\n' +
        'Steps: 30, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, ' +
        'Model hash: abcdef1234, Model: name, Denoising strength: 0.6, Mask blur: 4, ' +
        'Lora hashes: "abc: 111111111111, d: 222222222222", Version: atelier-0.1.0, ' +
        'Civitai resources: [{"type":"checkpoint","modelVersionId":5}]',
    )
  })

  it('omits the negative line when empty', () => {
    expect(
      formatInfotext({ prompt: 'x', negativePrompt: '', steps: 1, sampler: 'DDIM', seed: 3, extra: {} }),
    ).toBe('x\nSteps: 1, Sampler: DDIM, Seed: 3')
  })
})

describe('parseInfotext round trip', () => {
  it('gives back every field', () => {
    expect(parseInfotext(formatInfotext(FULL))).toEqual(FULL)
  })

  it('minimal parameters', () => {
    const p: GenerationParameters = {
      prompt: 'x',
      negativePrompt: '',
      steps: 20,
      sampler: 'DPM++ 2M',
      cfgScale: 5,
      seed: 0,
      extra: {},
    }
    expect(parseInfotext(formatInfotext(p))).toEqual(p)
  })
})

describe('parseInfotext on real-world A1111 texts', () => {
  it('classic 1.x txt2img', () => {
    const t =
      "girl with an artist's beret, determined, blue eyes, desert scene, ((eyeshadow)), (coquettish), detailed\n" +
      'Negative prompt: ugly, fat, obese, (((deformed))), [blurry], bad anatomy\n' +
      'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b'
    const p = parseInfotext(t)
    expect(p.prompt).toBe(
      "girl with an artist's beret, determined, blue eyes, desert scene, ((eyeshadow)), (coquettish), detailed",
    )
    expect(p.negativePrompt).toBe('ugly, fat, obese, (((deformed))), [blurry], bad anatomy')
    expect(p).toMatchObject({ steps: 20, sampler: 'Euler a', cfgScale: 7, seed: 965400086 })
    expect([p.width, p.height, p.modelHash]).toEqual([512, 512, '45dee52b'])
    expect(p.extra).toEqual({})
    expect(withA1111Defaults(p)).toMatchObject({
      clipSkip: 1,
      inpaintArea: 'Whole picture',
      maskedAreaPadding: 32,
    })
  })

  it('1.10 img2img inpaint with LoRA, TI and hires keys', () => {
    const t =
      'masterpiece, best quality, 1girl, <lora:add_detail:0.7>, looking at viewer\n' +
      'Negative prompt: EasyNegative, (worst quality:1.4)\n' +
      'Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 2383412233, Size: 512x768, ' +
      'Model hash: 879db523c3, Model: dreamshaper_8, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, ' +
      'Denoising strength: 0.45, Clip skip: 2, Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32, ' +
      'Masked content: fill, TI hashes: "EasyNegative: c74b4e810b03", Lora hashes: "add_detail: 7c6bad76eb54", ' +
      'Emphasis: No norm, Version: v1.10.1'
    const p = parseInfotext(t)
    expect(p.prompt).toBe('masterpiece, best quality, 1girl, <lora:add_detail:0.7>, looking at viewer')
    expect(p.negativePrompt).toBe('EasyNegative, (worst quality:1.4)')
    expect(p).toMatchObject({
      steps: 28,
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
      cfgScale: 6.5,
      seed: 2383412233,
      width: 512,
      height: 768,
      modelHash: '879db523c3',
      model: 'dreamshaper_8',
      vaeHash: '735e4c3a44',
      vae: 'vae-ft-mse-840000-ema-pruned.safetensors',
      denoisingStrength: 0.45,
      clipSkip: 2,
      maskBlur: 4,
      inpaintArea: 'Only masked',
      maskedAreaPadding: 32,
      maskedContent: 'fill',
      loraHashes: [{ name: 'add_detail', hash: '7c6bad76eb54' }],
      version: 'v1.10.1',
    })
    expect(p.extra).toEqual({ 'TI hashes': 'EasyNegative: c74b4e810b03', Emphasis: 'No norm' })
  })

  it('no negative prompt, multi-line prompt, hires fix', () => {
    const t =
      'line one,\nline two (with parens)\n' +
      'Steps: 25, Sampler: DPM++ SDE Karras, CFG scale: 8, Seed: 12, Size: 640x448, Model hash: e6e99610c4, ' +
      'Denoising strength: 0.52, Hires upscale: 2, Hires steps: 15, Hires upscaler: 4x-UltraSharp'
    const p = parseInfotext(t)
    expect(p.prompt).toBe('line one,\nline two (with parens)')
    expect(p.negativePrompt).toBe('')
    expect(p.extra).toEqual({ 'Hires upscale': '2', 'Hires steps': '15', 'Hires upscaler': '4x-UltraSharp' })
  })

  it('Dynamic Prompts Template lines after the parameter line', () => {
    const t =
      'a red car\nNegative prompt: blurry\n' +
      'Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 512x512\n' +
      'Template: a {red|blue} car\nNegative Template: blurry'
    const p = parseInfotext(t)
    expect(p.prompt).toBe('a red car')
    expect(p.negativePrompt).toBe('blurry')
    expect(p.steps).toBe(20)
    expect(p.extra).toEqual({ Template: 'a {red|blue} car', 'Negative Template': 'blurry' })
  })

  it('Template quoted inside the parameter line (newer Dynamic Prompts)', () => {
    const t =
      'a red car\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Template: "a {red|blue} car, photo", Version: v1.6.0'
    const p = parseInfotext(t)
    expect(p.extra.Template).toBe('a {red|blue} car, photo')
    expect(p.version).toBe('v1.6.0')
  })

  it('Civitai extension Hashes + Civitai resources JSON', () => {
    const t =
      'portrait\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: aa, Version: v1.7.0, ' +
      'Hashes: {"vae": "c6a580b13a", "lora:x": "111", "model": "aa"}, ' +
      'Civitai resources: [{"type":"checkpoint","modelVersionId":1},{"type":"lora","weight":0.8,"modelVersionId":2}]'
    const p = parseInfotext(t)
    expect(p.hashes).toEqual({ vae: 'c6a580b13a', 'lora:x': '111', model: 'aa' })
    expect(p.civitaiResources).toEqual([
      { type: 'checkpoint', modelVersionId: 1 },
      { type: 'lora', weight: 0.8, modelVersionId: 2 },
    ])
    expect(p.version).toBe('v1.7.0')
    expect(p.extra).toEqual({})
  })

  it('prompt only (no parameter line)', () => {
    const p = parseInfotext('just a prompt, with: colon')
    expect(p.prompt).toBe('just a prompt, with: colon')
    expect(p.steps).toBeUndefined()
  })

  it('keeps values it cannot convert in extra', () => {
    const p = parseInfotext('x\nSteps: many, Sampler: Euler, Seed: 1, Size: big')
    expect(p.steps).toBeUndefined()
    expect(p.extra).toEqual({ Steps: 'many', Size: 'big' })
  })
})

describe('PNG chunks', () => {
  it('crc32 matches the PNG spec value of IEND', () => {
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082)
  })

  it('rejects non-PNG data with a readable error', () => {
    expect(() => readChunks(new Uint8Array([1, 2, 3]), 'photo.jpg')).toThrow(PngFormatError)
    expect(() => readChunks(new Uint8Array([1, 2, 3]), 'photo.jpg')).toThrow(/photo\.jpg is not a PNG/)
  })

  it('writes tEXt for Latin-1 and iTXt otherwise; reads both and zTXt / compressed iTXt', async () => {
    const png = await encodePng(testImage())
    const withText = insertPngText(png, [
      { keyword: 'a', text: 'café' },
      { keyword: 'b', text: '猫 ✓' },
    ])
    const types = readChunks(withText).map((c) => c.type)
    expect(types.slice(0, 3)).toEqual(['IHDR', 'tEXt', 'iTXt'])
    // a zTXt and a compressed iTXt added by hand
    const z = encodeChunk(
      'zTXt',
      Buffer.concat([Buffer.from('z\0\0', 'latin1'), deflateSync(Buffer.from('zipped text', 'latin1'))]),
    )
    const ci = encodeChunk(
      'iTXt',
      Buffer.concat([
        Buffer.from('c\0\x01\0en\0c\0', 'latin1'),
        deflateSync(Buffer.from('компрессия', 'utf8')),
      ]),
    )
    const iend = withText.length - 12
    const all = Buffer.concat([withText.subarray(0, iend), z, ci, withText.subarray(iend)])
    expect(readPngText(all).map((e) => [e.keyword, e.text, e.chunk])).toEqual([
      ['a', 'café', 'tEXt'],
      ['b', '猫 ✓', 'iTXt'],
      ['z', 'zipped text', 'zTXt'],
      ['c', 'компрессия', 'iTXt'],
    ])
  })
})

describe('encodePngWithParameters / readGenerationParameters', () => {
  it('round-trips every parameter through a PNG, pixels untouched', async () => {
    const img = testImage()
    const plain = await encodePng(img)
    const png = await encodePngWithParameters(img, FULL)
    const read = readGenerationParameters(png, 'out.png')
    expect(read?.source).toBe('parameters')
    expect(read?.params).toEqual(FULL)
    // every chunk of the plain encoding is present byte for byte (IDAT included)
    const idat = (b: Uint8Array): string =>
      Buffer.concat(
        readChunks(b)
          .filter((c) => c.type === 'IDAT')
          .map((c) => c.data),
      ).toString('hex')
    expect(idat(png)).toBe(idat(plain))
    expect(png.length).toBe(plain.length + 12 + 'parameters'.length + 1 + formatInfotext(FULL).length)
  })

  it('same image + parameters → identical bytes', async () => {
    const a = await encodePngWithParameters(testImage(), FULL)
    const b = await encodePngWithParameters(testImage(), FULL)
    expect(a.equals(b)).toBe(true)
  })

  it('defaults Version to the Atelier version and uses iTXt for non-Latin-1 prompts', async () => {
    const png = await encodePngWithParameters(testImage(), {
      prompt: '一只猫',
      negativePrompt: '',
      steps: 4,
      seed: 9,
      sampler: 'Euler',
      extra: {},
    })
    expect(readChunks(png)[1]?.type).toBe('iTXt')
    const p = readGenerationParameters(png)?.params
    expect(p?.prompt).toBe('一只猫')
    expect(p?.version).toBe(ATELIER_VERSION)
    expect(ATELIER_VERSION).toMatch(/^atelier-\d+\.\d+\.\d+/)
  })

  it('replaces an existing parameters chunk instead of adding a second', async () => {
    const once = addParametersToPng(await encodePng(testImage()), { ...FULL, seed: 1 })
    const twice = addParametersToPng(once, { ...FULL, seed: 2 })
    expect(readPngText(twice).filter((e) => e.keyword === 'parameters')).toHaveLength(1)
    expect(readGenerationParameters(twice)?.params.seed).toBe(2)
  })

  it('reads InvokeAI invokeai_metadata', async () => {
    const meta = {
      generation_mode: 'img2img',
      positive_prompt: 'a lighthouse at dusk',
      negative_prompt: 'blurry',
      width: 768,
      height: 512,
      seed: 1234,
      rand_device: 'cpu',
      cfg_scale: 6,
      steps: 25,
      scheduler: 'dpmpp_2m_k',
      clip_skip: 1,
      strength: 0.7,
      model: { key: 'k', hash: 'blake3:abc', name: 'Juggernaut', base: 'sdxl', type: 'main' },
      loras: [{ model: { key: 'l', hash: 'blake3:def', name: 'detail' }, weight: 0.75 }],
      app_version: '5.3.0',
    }
    const png = insertPngText(await encodePng(testImage()), [
      { keyword: 'invokeai_metadata', text: JSON.stringify(meta) },
    ])
    const r = readGenerationParameters(png)
    expect(r?.source).toBe('invokeai_metadata')
    expect(r?.params).toMatchObject({
      prompt: 'a lighthouse at dusk <lora:detail:0.75>',
      negativePrompt: 'blurry',
      width: 768,
      height: 512,
      seed: 1234,
      cfgScale: 6,
      steps: 25,
      sampler: 'dpmpp_2m_k',
      clipSkip: 2,
      denoisingStrength: 0.7,
      model: 'Juggernaut',
      modelHash: 'blake3:abc',
      loraHashes: [{ name: 'detail', hash: 'blake3:def' }],
    })
    expect(r?.params.extra).toMatchObject({ generation_mode: 'img2img', app_version: '5.3.0' })
  })

  it('returns undefined for a PNG without parameters', async () => {
    expect(readGenerationParameters(await encodePng(testImage()))).toBeUndefined()
  })
})
