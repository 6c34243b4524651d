import { describe, expect, it } from 'vitest'
import type { CivitaiVersionJson } from './types'
import type { FewStepFacts } from './few-step'
import { pickSampler, presetForRequest, presetSummary } from '../../preload/few-step'
import { detectFewStep, fewStepOfRecord, parseRecommendedSettings } from './few-step'

/** Facts the way the library has them for a file with a `.civitai.info` (a Civitai model-version JSON). */
function fromCivitai(info: CivitaiVersionJson, fileName: string, type: string): FewStepFacts {
  return {
    type,
    fileName,
    name: fileName.replace(/\.[^.]+$/, ''),
    baseModel: info.baseModel ?? null,
    civitaiModelName: info.model?.name ?? null,
    civitaiVersionName: info.name ?? null,
    trainedWords: info.trainedWords ?? [],
    description: info.description ?? null,
    tags: Array.isArray(info.model?.tags) ? (info.model.tags as string[]) : null,
    imageMeta: (info.images ?? []).flatMap((i) =>
      i.meta && typeof i.meta === 'object' ? [i.meta as Record<string, unknown>] : [],
    ),
  }
}

const LCM_LORA: CivitaiVersionJson = {
  id: 225222,
  modelId: 195519,
  name: 'LCM-LoRA SD1.5',
  createdAt: '2023-11-12T00:49:18.162Z',
  baseModel: 'SD 1.5',
  baseModelType: 'Standard',
  trainedWords: [],
  description:
    '<p>Latent Consistency Model (LCM) LoRA: SDv1-5. Distilled consistency adapter for runwayml/stable-diffusion-v1-5 that allows to reduce the number of inference steps to only between 2 - 8 steps.</p>',
  model: { name: 'LCM-LoRA Weights - Stable Diffusion Acceleration Module', type: 'LORA', nsfw: false },
  files: [
    {
      name: 'lcm-lora-sdv1-5.safetensors',
      sizeKB: 131689.5,
      type: 'Model',
      primary: true,
      hashes: { SHA256: '8F90D840E075FF588A58E22C6586E2AE9A6F7922996EE6649A7F01072333AFE4' },
    },
  ],
  images: [],
}

const JUGGERNAUT_LIGHTNING: CivitaiVersionJson = {
  id: 357609,
  modelId: 133005,
  name: 'V9+RDPhoto2-Lightning_4S',
  baseModel: 'SDXL Lightning',
  baseModelType: 'Standard',
  trainedWords: [],
  description:
    '<p><strong>Lightning version</strong></p><p>Sampler: DPM++ SDE Karras</p><p>Steps: 4-6</p><p>CFG: 1-2</p><p>Resolution 832x1216</p>',
  model: { name: 'Juggernaut XL', type: 'Checkpoint', nsfw: false, tags: ['base model', 'photorealistic'] },
  files: [
    {
      name: 'juggernautXL_v9Rdphoto2Lightning.safetensors',
      type: 'Model',
      primary: true,
      hashes: { SHA256: 'C8DF560D2992AC04299412BE6A36FA53A4E7A1B74F27B94867AD3F84F4B425E5' },
    },
  ],
  images: [
    { url: 'https://image.civitai.com/a.jpeg', meta: { steps: 5, cfgScale: 2, sampler: 'DPM++ SDE Karras' } },
  ],
}

const SDXL_TURBO_MERGE: CivitaiVersionJson = {
  id: 251662,
  modelId: 112902,
  name: 'Turbo v2',
  baseModel: 'SDXL Turbo',
  trainedWords: [],
  description:
    '<p>Recommended settings</p><ul><li>5-10 steps</li><li>CFG 2</li><li>DPM++ SDE Karras</li></ul>',
  model: { name: 'DreamShaper XL', type: 'Checkpoint', nsfw: false },
  files: [{ name: 'dreamshaperXL_turboDpmppSDE.safetensors', type: 'Model', primary: true }],
}

const LCM_CHECKPOINT_IMAGES: CivitaiVersionJson = {
  id: 252914,
  modelId: 4384,
  name: '8 LCM',
  baseModel: 'SD 1.5 LCM',
  trainedWords: [],
  description: '<p>LCM version of DreamShaper 8.</p>',
  model: { name: 'DreamShaper', type: 'Checkpoint', nsfw: false },
  files: [{ name: 'dreamshaper_8LCM.safetensors', type: 'Model', primary: true }],
  images: [
    { url: 'u1', meta: { steps: 6, cfgScale: 1.5, sampler: 'LCM', seed: 1 } },
    { url: 'u2', meta: { steps: 8, cfgScale: 2, sampler: 'LCM', seed: 2 } },
    { url: 'u3', meta: { steps: 6, cfgScale: 1.5, sampler: 'Euler a', seed: 3 } },
    { url: 'u4', meta: null },
  ],
}

const DREAMSHAPER_8: CivitaiVersionJson = {
  id: 128713,
  modelId: 4384,
  name: '8',
  baseModel: 'SD 1.5',
  trainedWords: [],
  description: '<p>Works well with the LCM LoRA and with Hyper-SD at 8 steps. Use 30 steps, CFG 7.</p>',
  model: { name: 'DreamShaper', type: 'Checkpoint', nsfw: false },
  files: [{ name: 'dreamshaper_8.safetensors', type: 'Model', primary: true }],
}

describe('few-step model detection', () => {
  it('recognises the LCM-LoRA from its Civitai JSON and applies the LCM card (sampler LCM, 4 steps, CFG 1)', () => {
    const p = detectFewStep(fromCivitai(LCM_LORA, 'lcm-lora-sdv1-5.safetensors', 'lora'))
    expect(p).toMatchObject({
      kind: 'lcm',
      sampler: 'LCM',
      cfgRange: [1, 2],
      reason: 'name "lcm-lora-sdv1-5.safetensors"',
      label: 'SD LCM LoRA',
    })
    // The description gives a step range ("2 - 8 steps"), which the author published: it wins.
    expect(p?.stepsRange).toEqual([2, 8])
    expect(p?.steps).toBe(2)
    expect(p?.settingsFrom).toBe('description')
  })

  it('a Lightning merge follows its author: DPM++ SDE Karras, 4-6 steps, CFG 1-2', () => {
    const p = detectFewStep(
      fromCivitai(JUGGERNAUT_LIGHTNING, 'juggernautXL_v9Rdphoto2Lightning.safetensors', 'checkpoint'),
    )
    expect(p).toMatchObject({
      kind: 'lightning',
      steps: 4,
      stepsRange: [4, 6],
      cfgScale: 1,
      cfgRange: [1, 2],
      sampler: 'DPM++ SDE Karras',
      scheduleType: 'Karras',
      settingsFrom: 'description',
      reason: 'Civitai base model "SDXL Lightning"',
    })
    expect(p?.label).toBe('SDXL Lightning')
  })

  it('official ByteDance files keep the card: Euler + SGM Uniform at the step count in the name', () => {
    const p = detectFewStep({
      type: 'lora',
      fileName: 'sdxl_lightning_4step_lora.safetensors',
      family: 'sdxl',
    })
    expect(p).toMatchObject({
      kind: 'lightning',
      steps: 4,
      cfgScale: 1,
      sampler: 'Euler',
      scheduleType: 'SGM Uniform',
      settingsFrom: 'published defaults',
      label: 'SDXL Lightning 4-step LoRA',
    })
    expect(detectFewStep({ fileName: 'sdxl_lightning_8step_unet.safetensors' })?.steps).toBe(8)
  })

  it('Hyper-SD: N-step LoRAs on DDIM trailing with CFG 1, CFG variants with guidance, 1-step with TCD', () => {
    expect(detectFewStep({ type: 'lora', fileName: 'Hyper-SD15-4steps-lora.safetensors' })).toMatchObject({
      kind: 'hyper',
      steps: 4,
      cfgScale: 1,
      sampler: 'DDIM',
      scheduleType: 'SGM Uniform',
    })
    expect(detectFewStep({ type: 'lora', fileName: 'Hyper-SDXL-8steps-CFG-lora.safetensors' })).toMatchObject(
      {
        kind: 'hyper',
        steps: 8,
        cfgScale: 6,
        cfgRange: [5, 8],
      },
    )
    expect(detectFewStep({ type: 'lora', fileName: 'Hyper-SDXL-1step-lora.safetensors' })).toMatchObject({
      steps: 1,
      sampler: 'TCD',
    })
  })

  it('a Turbo merge takes the description (5-10 steps, CFG 2, DPM++ SDE Karras) over the Turbo card', () => {
    const p = detectFewStep(
      fromCivitai(SDXL_TURBO_MERGE, 'dreamshaperXL_turboDpmppSDE.safetensors', 'checkpoint'),
    )
    expect(p).toMatchObject({
      kind: 'turbo',
      steps: 5,
      stepsRange: [5, 10],
      cfgScale: 2,
      sampler: 'DPM++ SDE Karras',
    })
    // Without a description: the SDXL-Turbo card (Euler a, CFG 1).
    expect(detectFewStep({ baseModel: 'SDXL Turbo', fileName: 'x.safetensors' })).toMatchObject({
      sampler: 'Euler a',
      cfgScale: 1,
      stepsRange: [1, 4],
    })
  })

  it('an LCM checkpoint without stated settings takes its sample images (median steps and CFG, usual sampler)', () => {
    const p = detectFewStep(fromCivitai(LCM_CHECKPOINT_IMAGES, 'dreamshaper_8LCM.safetensors', 'checkpoint'))
    expect(p).toMatchObject({
      kind: 'lcm',
      steps: 6,
      cfgScale: 1.5,
      sampler: 'LCM',
      settingsFrom: 'sample images',
      reason: 'Civitai base model "SD 1.5 LCM"',
    })
  })

  it('TCD from the name; A1111 notes count; ordinary models and look-alike words do not match', () => {
    expect(detectFewStep({ type: 'lora', fileName: 'TCD-SD15-LoRA.safetensors' })).toMatchObject({
      kind: 'tcd',
      sampler: 'TCD',
      steps: 4,
    })
    expect(
      detectFewStep({ fileName: 'my_merge.safetensors', notes: 'LCM merge, use the LCM sampler' })?.kind,
    ).toBe('lcm')
    expect(detectFewStep(fromCivitai(DREAMSHAPER_8, 'dreamshaper_8.safetensors', 'checkpoint'))).toBeNull()
    for (const fileName of ['HyperRealism_v3.safetensors', 'lcmXL_style.safetensors', 'turbonet.safetensors'])
      expect(detectFewStep({ fileName }), fileName).toBeNull()
  })

  it('parses recommendation text in several shapes', () => {
    expect(parseRecommendedSettings('Steps: 8, CFG Scale: 1.5, Sampler: Euler a')).toEqual({
      steps: [8, 8],
      cfg: [1.5, 1.5],
      sampler: 'Euler a',
    })
    expect(parseRecommendedSettings('use 4 to 6 steps with guidance 1 and sgm_uniform')).toEqual({
      steps: [4, 6],
      cfg: [1, 1],
      scheduleType: 'SGM Uniform',
    })
    expect(parseRecommendedSettings('<p>A lovely model.</p>')).toEqual({})
  })

  it('falls back to an available sampler and lets a few-step LoRA decide the request', () => {
    const lcm = detectFewStep({ type: 'lora', fileName: 'lcm-lora-sdxl.safetensors' })
    if (!lcm) throw new Error('expected a preset')
    expect(pickSampler(lcm, ['Euler', 'Euler a', 'LCM'])).toBe('LCM')
    expect(pickSampler(lcm, ['Euler', 'DDIM'])).toBe('Euler')
    expect(pickSampler(lcm, ['DDIM'])).toBeUndefined()
    const turbo = detectFewStep({ baseModel: 'SDXL Turbo' })
    expect(presetForRequest(turbo, [null, lcm])).toBe(lcm)
    expect(presetForRequest(turbo, [null])).toBe(turbo)
    expect(presetForRequest(null, [])).toBeNull()
    expect(presetSummary(lcm)).toBe('LCM · 4 steps · CFG 1')
    expect(presetSummary(lcm, 'Euler')).toBe('Euler · 4 steps · CFG 1')
    const lightning = detectFewStep({ fileName: 'sdxl_lightning_2step_lora.safetensors' })
    if (!lightning) throw new Error('expected a preset')
    expect(presetSummary(lightning)).toBe('Euler SGM Uniform · 2 steps · CFG 1')
  })

  it('library records carry their preset (checkpoints and LoRAs only)', () => {
    const record = {
      type: 'lora',
      family: 'sd-1',
      fileName: 'pytorch_lora_weights.safetensors',
      name: 'pytorch_lora_weights',
      baseModel: 'SD 1.5',
      civitai: {
        modelName: 'LCM-LoRA Weights - Stable Diffusion Acceleration Module',
        versionName: 'LCM-LoRA SD1.5',
      },
      trainedWords: [],
      description: null,
      notes: null,
    }
    expect(fewStepOfRecord(record)).toMatchObject({ kind: 'lcm', sampler: 'LCM', steps: 4, cfgScale: 1 })
    expect(fewStepOfRecord({ ...record, type: 'embedding' })).toBeNull()
    expect(fewStepOfRecord({ ...record, civitai: null })).toBeNull()
  })
})
