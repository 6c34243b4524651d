import { describe, expect, it } from 'vitest'
import { mapImageMeta } from '../../remote/civitai/map'
import { toParams } from './dto'
import { imageResources, imageRng, imageSampler, promptLoras } from './image-settings'

// Shaped like real /api/v1/images items: an A1111 1.9+ upload (Civitai extension), an old A1111 upload with a
// combined sampler name, and an on-site / ComfyUI upload that only carries civitaiResources[].
const a1111New = {
  prompt: 'masterpiece, 1girl, <lora:add_detail:0.6>, <lyco:hanfu_loha:0.8>, easynegative_pos',
  negativePrompt: 'easynegative, (worst quality:1.4)',
  seed: 3623841032,
  steps: 28,
  sampler: 'DPM++ 2M',
  'Schedule type': 'Karras',
  cfgScale: 6.5,
  clipSkip: 2,
  Size: '512x768',
  Model: 'dreamshaper_8',
  'Model hash': '879DB523C3',
  VAE: 'vae-ft-mse-840000-ema-pruned.safetensors',
  'VAE hash': '735e4c3a44',
  'Lora hashes': '"add_detail: 7c6bad76eb54, hanfu_loha: 1a2b3c4d5e6f"',
  'TI hashes': '"easynegative: c74b4e810b03"',
  resources: [
    { name: 'add_detail', type: 'lora', weight: 0.6, hash: '7c6bad76eb54' },
    { name: 'dreamshaper_8', type: 'model', hash: '879db523c3' },
  ],
}
const a1111Old = {
  prompt: 'a castle <lora:castle_v2>',
  seed: 42,
  steps: 20,
  sampler: 'DPM++ 2M Karras',
  cfgScale: 7,
  Size: '768x512',
  Model: 'v1-5-pruned-emaonly',
}
const comfy = {
  prompt: 'portrait photo',
  negativePrompt: 'blurry',
  seed: 1938345220,
  steps: 45,
  sampler: 'DPM++ 2M SDE',
  scheduler: 'exponential',
  cfgScale: 5,
  Size: '832x1216',
  resources: [],
  civitaiResources: [
    { type: 'checkpoint', modelVersionId: 345685 },
    { type: 'lora', weight: 0.65, modelVersionId: 249861 },
    { type: 'embed', modelVersionId: 9208 },
    { type: 'vae', modelVersionId: 155933 },
  ],
}

describe('Civitai image meta -> "use these settings"', () => {
  it('reads an A1111 1.9+ image: schedule type, VAE, LoRA / LyCORIS tags with weights and hashes, embeddings', () => {
    const p = toParams(mapImageMeta(a1111New))!
    expect(p).toMatchObject({
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
      steps: 28,
      cfgScale: 6.5,
      seed: 3623841032,
      clipSkip: 2,
      width: 512,
      height: 768,
      model: 'dreamshaper_8',
      vae: 'vae-ft-mse-840000-ema-pruned',
    })
    expect(p.resources).toEqual([
      { kind: 'checkpoint', name: 'dreamshaper_8', weight: null, modelVersionId: null, hash: '879db523c3' },
      { kind: 'lora', name: 'add_detail', weight: 0.6, modelVersionId: null, hash: '7c6bad76eb54' },
      { kind: 'lora', name: 'hanfu_loha', weight: 0.8, modelVersionId: null, hash: '1a2b3c4d5e6f' },
      { kind: 'embedding', name: 'easynegative', weight: null, modelVersionId: null, hash: 'c74b4e810b03' },
      {
        kind: 'vae',
        name: 'vae-ft-mse-840000-ema-pruned',
        weight: null,
        modelVersionId: null,
        hash: '735e4c3a44',
      },
    ])
  })
  it('the RNG: A1111 meta without RNG is its default GPU, RNG: CPU the CPU one, ComfyUI uploads CPU', () => {
    expect(toParams(mapImageMeta(a1111New))?.rng).toBe('gpu')
    expect(toParams(mapImageMeta(a1111Old))?.rng).toBe('gpu')
    expect(toParams(mapImageMeta({ ...a1111Old, RNG: 'CPU' }))?.rng).toBe('cpu')
    expect(imageRng({ RNG: 'NV' })).toBe('gpu')
    expect(imageRng({ ...comfy, comfy: '{"prompt":{}}' })).toBe('cpu')
    expect(toParams(mapImageMeta({ id: 1, meta: comfy }))?.rng).toBeNull()
  })
  it('keeps an old combined sampler name for the studio to split, and a tag without weight is 1', () => {
    const p = toParams(mapImageMeta(a1111Old))!
    expect(p.sampler).toBe('DPM++ 2M Karras')
    expect(p.scheduleType).toBeNull()
    expect(p.vae).toBeNull()
    expect(p.resources).toEqual([
      { kind: 'checkpoint', name: 'v1-5-pruned-emaonly', weight: null, modelVersionId: null, hash: null },
      { kind: 'lora', name: 'castle_v2', weight: 1, modelVersionId: null, hash: null },
    ])
  })
  it('reads civitaiResources (version ids, LoRA weight) and a ComfyUI scheduler', () => {
    const p = toParams(mapImageMeta({ id: 1, meta: comfy }))!
    expect(p.scheduleType).toBe('Exponential')
    expect(p.resources.map((r) => [r.kind, r.modelVersionId, r.weight])).toEqual([
      ['checkpoint', 345685, null],
      ['lora', 249861, 0.65],
      ['embedding', 9208, null],
      ['vae', 155933, null],
    ])
    expect(p.vae).toBeNull()
  })
  it('merges the same LoRA named by tag, hash list and civitaiResources; skips junk entries', () => {
    const rs = imageResources(
      {
        'Lora hashes': 'detail: ABCDEF012345',
        resources: [null, 'x', { type: 'lora', name: 'detail', hash: 'abcdef012345aa' }, { type: 'poses' }],
        civitaiResources: [{ type: 'lora' }, { type: 'lora', modelVersionId: '77', weight: 0.3 }],
      },
      '<lora:detail:0.4> <lora:detail:0.4>',
    )
    expect(rs).toEqual([
      { kind: 'lora', name: 'detail', weight: 0.4, modelVersionId: null, hash: 'abcdef012345aa' },
      { kind: 'lora', name: null, weight: 0.3, modelVersionId: 77, hash: null },
    ])
  })
  it('parses prompt tags the way A1111 writes them', () => {
    expect(promptLoras('<lora:a:0.5>, <LORA:b>, <lyco:c:1.2:0.5>, <lora:d:x>, <lora:>')).toEqual([
      { name: 'a', weight: 0.5 },
      { name: 'b', weight: 1 },
      { name: 'c', weight: 1.2 },
      { name: 'd', weight: 1 },
    ])
    expect(promptLoras(null)).toEqual([])
  })

  it('maps ComfyUI sampler / scheduler names (ComfyUI uploads) to the sampler and Schedule type that run them', () => {
    const at = (meta: Record<string, unknown>) => toParams(mapImageMeta({ ...comfy, ...meta }))!
    expect(at({ sampler: 'dpmpp_2m', scheduler: 'karras' })).toMatchObject({
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
    })
    expect(at({ sampler: 'euler_ancestral', scheduler: 'normal' })).toMatchObject({
      sampler: 'Euler a',
      scheduleType: 'Normal',
    })
    expect(at({ sampler: 'dpmpp_2m_sde_gpu', scheduler: 'exponential' })).toMatchObject({
      sampler: 'DPM++ 2M SDE',
      scheduleType: 'Exponential',
    })
    expect(at({ sampler: 'dpmpp_3m_sde', scheduler: 'sgm_uniform' })).toMatchObject({
      sampler: 'DPM++ 3M SDE',
      scheduleType: 'SGM Uniform',
    })
    expect(at({ sampler: 'ddim', scheduler: 'ddim_uniform' })).toMatchObject({
      sampler: 'Euler',
      scheduleType: 'DDIM',
    })
    expect(at({ sampler: 'euler', scheduler: 'beta' })).toMatchObject({
      sampler: 'Euler',
      scheduleType: 'Beta',
    })
    expect(at({ sampler: 'lcm', scheduler: 'simple' })).toMatchObject({
      sampler: 'LCM',
      scheduleType: 'Simple',
    })
    // ComfyUI-only scheduler: no Schedule type; unsupported sampler: the name is kept so the studio reports it
    expect(at({ sampler: 'dpmpp_2m', scheduler: 'linear_quadratic' })).toMatchObject({
      sampler: 'DPM++ 2M',
      scheduleType: null,
    })
    expect(at({ sampler: 'res_multistep', scheduler: 'karras' })).toMatchObject({
      sampler: 'res_multistep',
      scheduleType: 'Karras',
    })
    // A1111 names with a ComfyUI scheduler key beside them
    expect(imageSampler('DPM++ 2M', { scheduler: 'sgm_uniform' })).toEqual({
      sampler: 'DPM++ 2M',
      scheduleType: 'SGM Uniform',
    })
    expect(imageSampler('Euler a', { 'Schedule type': 'Karras' })).toEqual({
      sampler: 'Euler a',
      scheduleType: 'Karras',
    })
  })
})
