import { describe, expect, it } from 'vitest'
import {
  buildRequest,
  DEFAULT_PARAMS,
  restoreParameters,
  samplerAndSchedule,
  samplerName,
  withTriggerWords,
} from './params'
import { highlightPrompt, loraTags } from './prompt-highlight'

const png = new Uint8Array([0x89, 0x50])

describe('buildRequest', () => {
  const p = { ...DEFAULT_PARAMS, model: 'abc', prompt: 'a cat', strength: 0.6 }

  it('needs a model, an image and (inpaint) a mask', () => {
    expect(() => buildRequest('img2img', { ...p, model: '' }, { image: png })).toThrow(/checkpoint/)
    expect(() => buildRequest('img2img', p)).toThrow(/input image/)
    expect(() => buildRequest('inpaint', p, { image: png })).toThrow(/mask/)
  })

  it('img2img: strength, size from the image rounded down to 8, random seed as -1', () => {
    const r = buildRequest('img2img', p, { image: png, imageWidth: 517, imageHeight: 390 })
    expect(r).toMatchObject({ mode: 'img2img', strength: 0.6, width: 512, height: 384, seed: -1 })
    expect(r.mask).toBeUndefined()
    const fixed = buildRequest(
      'img2img',
      { ...p, sizeFromImage: false, width: 510, height: 300, seedMode: 'fixed', seed: 42 },
      { image: png },
    )
    expect(fixed).toMatchObject({ width: 512, height: 304, seed: 42 })
  })

  it('inpaint carries mask options; outpaint carries snapped extents and no size', () => {
    const i = buildRequest(
      'inpaint',
      { ...p, inpaintArea: 'only-masked', maskBlur: 6 },
      { image: png, mask: png, imageWidth: 64, imageHeight: 64 },
    )
    expect(i).toMatchObject({ mask: png, inpaintArea: 'only-masked', maskBlur: 6, onlyMaskedPadding: 32 })
    expect(() => buildRequest('outpaint', p, { image: png })).toThrow(/Extend/)
    const o = buildRequest(
      'outpaint',
      { ...p, outpaint: { left: 0, right: 61, top: 0, bottom: 0 }, outpaintRepeat: 2 },
      { image: png, imageWidth: 64, imageHeight: 64 },
    )
    expect(o.outpaint).toEqual({ left: 0, right: 64, top: 0, bottom: 0, overlap: 32, repeat: 2 })
    expect(o.width).toBeUndefined()
    expect(o.strength).toBeUndefined()
  })
})

describe('speed and memory toggles', () => {
  const p = { ...DEFAULT_PARAMS, model: 'abc', prompt: 'a cat' }

  it('draft decode and a forced memory mode reach the request; Automatic sends neither', () => {
    const plain = buildRequest('txt2img', p)
    expect(plain.draftDecode).toBeUndefined()
    expect(plain.lowMemory).toBeUndefined()
    expect(buildRequest('txt2img', { ...p, draftDecode: true, memoryMode: 'low' })).toMatchObject({
      draftDecode: true,
      lowMemory: true,
    })
    expect(buildRequest('img2img', { ...p, memoryMode: 'normal' }, { image: png }).lowMemory).toBe(false)
  })
})

describe('restoreParameters', () => {
  const models = [
    { id: 'id-1', name: 'tiny-sd15', autoV2: 'ABCDEF0123' },
    { id: 'id-2', name: 'other', autoV2: '0000000000' },
  ]

  it('reads the typed fields and finds the model by hash', () => {
    const r = restoreParameters(
      {
        text: 'x',
        prompt: 'a house',
        negativePrompt: 'blurry',
        settings: {},
        steps: 12,
        sampler: 'DPM++ 2M',
        scheduleType: 'Karras',
        cfgScale: 5.5,
        seed: 99,
        width: 64,
        height: 96,
        model: 'renamed',
        modelHash: 'abcdef0123',
        denoisingStrength: 0.6,
        inpaintArea: 'Only masked',
        maskedContent: 'latent noise',
      },
      models,
    )
    expect(r.patch).toMatchObject({
      prompt: 'a house',
      negativePrompt: 'blurry',
      steps: 12,
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
      cfgScale: 5.5,
      seed: 99,
      seedMode: 'fixed',
      width: 64,
      height: 96,
      sizeFromImage: false,
      model: 'id-1',
      strength: 0.6,
      inpaintArea: 'only-masked',
      maskedContent: 'latent-noise',
    })
    expect(r.notes).toEqual([])
  })

  it('falls back to the raw settings and reports what it cannot map', () => {
    const r = restoreParameters(
      {
        text: 'x',
        prompt: 'p',
        negativePrompt: '',
        settings: { Steps: '30', Sampler: 'DPM adaptive', Size: '512x768', Model: 'missing', Seed: '7' },
      },
      models,
    )
    expect(r.patch).toMatchObject({ steps: 30, width: 512, height: 768, seed: 7 })
    expect(r.patch.sampler).toBeUndefined()
    expect(r.notes.join('; ')).toMatch(/DPM adaptive.*; model "missing"/)
  })

  it('a ComfyUI graph restores its mapped sampler, img2img strength with exact steps, and lists what it skipped', () => {
    const r = restoreParameters({
      text: '{"3": {}}',
      source: 'comfyui',
      prompt: 'a cat <lora:detail:0.6>',
      negativePrompt: '',
      steps: 10,
      sampler: 'DPM++ 3M SDE',
      scheduleType: 'SGM Uniform',
      denoisingStrength: 0.6,
      exactSteps: true,
      notRestored: ['model node FreeU_V2 is not applied'],
      settings: { 'Sampler convention': 'comfy', 'ComfyUI sampler': 'dpmpp_3m_sde_gpu' },
    })
    expect(r.patch).toMatchObject({
      sampler: 'DPM++ 3M SDE',
      scheduleType: 'SGM Uniform',
      strength: 0.6,
      exactSteps: true,
      steps: 10,
    })
    expect(r.notes).toEqual(['model node FreeU_V2 is not applied'])
  })

  it('maps sampler names case-insensitively and splits a schedule off older names', () => {
    expect(samplerName('euler a')).toBe('Euler a')
    expect(samplerAndSchedule('DPM++ 2M Karras')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Karras' })
    expect(samplerAndSchedule('DPM++ 2M', 'Karras')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Karras' })
    expect(samplerAndSchedule('Euler a SGM Uniform')).toEqual({
      sampler: 'Euler a',
      scheduleType: 'SGM Uniform',
    })
    expect(samplerAndSchedule('DPM++ 2M')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Automatic' })
    expect(samplerName('Heun')).toBe('Heun')
    expect(samplerName('DPM adaptive')).toBeUndefined()
  })

  it('VAE: by VAE hash, else by file name; none in the infotext is Automatic; a missing one is reported', () => {
    const vaes = [
      {
        id: 'v-mse',
        name: 'vae-ft-mse',
        fileName: 'vae-ft-mse-840000-ema-pruned.safetensors',
        sha256: '735e4c3a44' + 'f'.repeat(54),
      },
      { id: 'v-kl', name: 'kl-f8-anime2', fileName: 'kl-f8-anime2.ckpt', autoV2: 'DF3C506E51' },
    ]
    const base = { text: 'x', prompt: 'p', negativePrompt: '' }
    const at = (settings: Record<string, string>, typed: Record<string, string> = {}) =>
      restoreParameters({ ...base, settings, ...typed }, models, vaes)
    // The hash wins over a renamed file.
    expect(at({}, { vae: 'renamed.safetensors', vaeHash: '735e4c3a44' }).patch.vae).toBe('v-mse')
    expect(at({ 'VAE hash': 'df3c506e51' }).patch.vae).toBe('v-kl')
    expect(at({ VAE: 'kl-f8-anime2.ckpt' }).patch.vae).toBe('v-kl')
    expect(at({ VAE: 'vae-ft-mse-840000-ema-pruned.safetensors' }).patch.vae).toBe('v-mse')
    expect(at({}).patch.vae).toBe('')
    const missing = at({ VAE: 'ClearVAE.safetensors', 'VAE hash': '0123456789' })
    expect(missing.patch.vae).toBe('')
    expect(missing.notes).toEqual(['VAE "ClearVAE.safetensors" is not in your library'])
    // Without the VAE list (sending a result to another tab) the VAE is left alone.
    expect(restoreParameters({ ...base, settings: { VAE: 'x.pt' } }).patch.vae).toBeUndefined()
  })

  it('clip skip and the RNG: A1111 writes neither at its defaults (1, GPU)', () => {
    const base = { text: 'x', prompt: 'p', negativePrompt: '' }
    expect(restoreParameters({ ...base, settings: {} }).patch).toMatchObject({ clipSkip: 1, rng: 'gpu' })
    expect(restoreParameters({ ...base, settings: { 'Clip skip': '2', RNG: 'CPU' } }).patch).toMatchObject({
      clipSkip: 2,
      rng: 'cpu',
    })
    expect(restoreParameters({ ...base, settings: {}, clipSkip: 12, rng: 'NV' }).patch).toMatchObject({
      clipSkip: 12,
      rng: 'gpu',
    })
    expect(restoreParameters({ ...base, settings: {}, rng: 'GPU' }).patch.rng).toBe('gpu')
    expect(restoreParameters({ ...base, settings: {}, clipSkip: 40 }).patch.clipSkip).toBe(12)
    expect(restoreParameters({ ...base, source: 'comfyui', settings: {} }).patch.rng).toBe('cpu')
    // InvokeAI metadata has no A1111 RNG default.
    expect(
      restoreParameters({ ...base, source: 'invokeai_metadata', settings: {} }).patch.rng,
    ).toBeUndefined()
  })

  it('sends the VAE, a clip skip above 1 and the GPU RNG; defaults send nothing', () => {
    const p = { ...DEFAULT_PARAMS, model: 'm' }
    const plain = buildRequest('txt2img', p)
    expect([plain.vae, plain.clipSkip, plain.rng]).toEqual([undefined, undefined, undefined])
    expect(buildRequest('txt2img', { ...p, vae: 'v-mse', clipSkip: 2, rng: 'gpu' })).toMatchObject({
      vae: 'v-mse',
      clipSkip: 2,
      rng: 'gpu',
    })
  })

  it('sends a Schedule type other than Automatic', () => {
    const p = { ...DEFAULT_PARAMS, model: 'm', sampler: 'DPM++ 2M', scheduleType: 'Exponential' }
    expect(buildRequest('txt2img', p)).toMatchObject({ sampler: 'DPM++ 2M', scheduleType: 'Exponential' })
    expect(buildRequest('txt2img', { ...p, scheduleType: 'Automatic' }).scheduleType).toBeUndefined()
  })
})

describe('prompt helpers', () => {
  it('appends missing trigger words only', () => {
    expect(withTriggerWords('', ['tok'])).toBe('tok')
    expect(withTriggerWords('a cat', ['tok', 'A CAT'])).toBe('a cat, tok')
    expect(withTriggerWords('a cat,', ['tok'])).toBe('a cat, tok')
  })

  it('highlights weights, LoRA tags, keywords and unbalanced brackets', () => {
    const prompt = 'a (house:1.2) <lora:x:0.8> BREAK [sky] \\( (oops'
    const segs = highlightPrompt(prompt)
    expect(segs.map((s) => s.text).join('')).toBe(prompt)
    expect(segs.filter((s) => s.kind !== 'text')).toEqual([
      { kind: 'bracket', text: '(' },
      { kind: 'weight', text: ':1.2' },
      { kind: 'bracket', text: ')' },
      { kind: 'lora', text: '<lora:x:0.8>' },
      { kind: 'keyword', text: 'BREAK' },
      { kind: 'bracket', text: '[' },
      { kind: 'bracket', text: ']' },
      { kind: 'escape', text: '\\(' },
      { kind: 'unbalanced', text: '(' },
    ])
    expect(loraTags('<lora:a:0.5> and <lora:b>')).toEqual([
      { name: 'a', weight: 0.5 },
      { name: 'b', weight: 1 },
    ])
  })
})

describe('highlightPrompt: embeddings', () => {
  it('marks known embedding names as whole words, any case, outside tags and weights', () => {
    const segs = highlightPrompt('EasyNegative, (bad-hands:1.2) easynegativeX <lora:easynegative:1>', [
      'easynegative',
      'bad-hands',
    ])
    expect(segs.filter((s) => s.kind === 'embedding').map((s) => s.text)).toEqual([
      'EasyNegative',
      'bad-hands',
    ])
    expect(segs.map((s) => s.text).join('')).toBe(
      'EasyNegative, (bad-hands:1.2) easynegativeX <lora:easynegative:1>',
    )
    expect(highlightPrompt('plain text', []).every((s) => s.kind === 'text')).toBe(true)
  })
})
