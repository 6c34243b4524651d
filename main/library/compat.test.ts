import { describe, expect, it } from 'vitest'
import type { CompatState } from './compat'
import { compatibility, parseBaseModel, resolveBase } from './compat'
import type { ModelType, ProbeFamily } from './types'

describe('parseBaseModel', () => {
  it.each([
    ['SD 1.4', 'sd-1', 'sd-1.4'],
    ['SD 1.5', 'sd-1', 'sd-1.5'],
    ['SD 1.5 LCM', 'sd-1', 'sd-1.5'],
    ['SD 1.5 Hyper', 'sd-1', 'sd-1.5'],
    ['SD 2.0', 'sd-2', 'sd-2.0'],
    ['SD 2.0 768', 'sd-2', 'sd-2.0'],
    ['SD 2.1', 'sd-2', 'sd-2.1'],
    ['SD 2.1 768', 'sd-2', 'sd-2.1'],
    ['SD 2.1 Unclip', 'sd-2', 'sd-2.1-unclip'],
    ['SDXL 0.9', 'sdxl', 'sdxl'],
    ['SDXL 1.0', 'sdxl', 'sdxl'],
    ['SDXL 1.0 LCM', 'sdxl', 'sdxl'],
    ['SDXL Lightning', 'sdxl', 'sdxl'],
    ['SDXL Turbo', 'sdxl', 'sdxl'],
    ['SDXL Hyper', 'sdxl', 'sdxl'],
    ['Pony', 'sdxl', 'pony'],
    ['Pony V7', 'auraflow', 'pony-v7'],
    ['Illustrious', 'sdxl', 'illustrious'],
    ['NoobAI', 'sdxl', 'noobai'],
    ['Playground v2', 'sdxl', 'playground-v2'],
    ['SD 3', 'sd-3', 'sd-3'],
    ['SD 3.5', 'sd-3', 'sd-3.5-large'],
    ['SD 3.5 Large Turbo', 'sd-3', 'sd-3.5-large'],
    ['SD 3.5 Medium', 'sd-3', 'sd-3.5-medium'],
    ['Flux.1 D', 'flux-1', 'flux.1-d'],
    ['Flux.1 S', 'flux-1', 'flux.1-s'],
    ['Flux.1 Kontext', 'flux-1', 'flux.1-kontext'],
    ['Flux.2 D', 'flux-2', null],
    ['Kolors', 'kolors', null],
    ['Wan Video 14B t2v', 'other', 'wan video 14b t2v'],
    ['Other', 'other', 'other'],
  ])('%s → %s / %s', (name, family, subBase) => {
    expect(parseBaseModel(name)).toEqual({ family, subBase, label: name })
  })

  it('returns null for nothing', () => {
    expect(parseBaseModel(null)).toBeNull()
    expect(parseBaseModel('  ')).toBeNull()
  })
})

describe('resolveBase', () => {
  it('lets header shapes decide the family and Civitai the sub-base', () => {
    expect(resolveBase('sdxl', 'Pony')).toEqual({ family: 'sdxl', subBase: 'pony' })
    expect(resolveBase('sd-1', 'SD 1.4')).toEqual({ family: 'sd-1', subBase: 'sd-1.4' })
    // A mislabelled upload: the shapes win, the contradicting sub-base is dropped.
    expect(resolveBase('sd-1', 'SDXL 1.0')).toEqual({ family: 'sd-1', subBase: null })
    expect(resolveBase(null, 'Flux.1 D')).toEqual({ family: 'flux-1', subBase: 'flux.1-d' })
    expect(resolveBase(null, null)).toEqual({ family: null, subBase: null })
  })
})

type Row = [
  string,
  ModelType,
  ProbeFamily | null,
  string | null, // addon: type, probe family, Civitai baseModel
  ProbeFamily | null,
  string | null, // checkpoint: probe family, Civitai baseModel
  CompatState,
  RegExp,
]

const rows: Row[] = [
  ['SD 1.5 LoRA on SD 1.5', 'lora', 'sd-1', 'SD 1.5', 'sd-1', 'SD 1.5', 'compatible', /Both are SD 1\.5/],
  [
    'SD 1.4 LoRA on SD 1.5',
    'lora',
    'sd-1',
    'SD 1.4',
    'sd-1',
    'SD 1.5',
    'partial',
    /SD 1\.4 lora on a SD 1\.5/,
  ],
  ['SD 1.x LoRA, unlabelled', 'lora', 'sd-1', null, 'sd-1', 'SD 1.5', 'compatible', /Both are SD 1\.x/],
  [
    'Pony LoRA on plain SDXL',
    'lora',
    'sdxl',
    'Pony',
    'sdxl',
    'SDXL 1.0',
    'partial',
    /Pony lora on a plain SDXL/,
  ],
  ['Pony LoRA on Illustrious', 'lora', 'sdxl', 'Pony', 'sdxl', 'Illustrious', 'partial', /different base/],
  ['Illustrious LoRA on NoobAI', 'lora', 'sdxl', 'Illustrious', 'sdxl', 'NoobAI', 'partial', /Illustrious/],
  ['Pony LoRA on Pony', 'lora', 'sdxl', 'Pony', 'sdxl', 'Pony', 'compatible', /Both are Pony/],
  ['SDXL Lightning LoRA on SDXL', 'lora', 'sdxl', 'SDXL Lightning', 'sdxl', 'SDXL 1.0', 'compatible', /SDXL/],
  [
    'SDXL LoRA on SD 1.5',
    'lora',
    'sdxl',
    'SDXL 1.0',
    'sd-1',
    'SD 1.5',
    'incompatible',
    /SDXL lora on a SD 1\.x/,
  ],
  ['SD 2.1 LoRA on SD 1.5', 'lora', 'sd-2', 'SD 2.1', 'sd-1', null, 'incompatible', /cannot load/],
  ['SD 2.0 LoRA on SD 2.1', 'lora', 'sd-2', 'SD 2.0', 'sd-2', 'SD 2.1', 'partial', /SD 2\.0/],
  ['Flux LoRA on SDXL', 'lora', null, 'Flux.1 D', 'sdxl', null, 'incompatible', /Flux\.1 lora on a SDXL/],
  ['unknown LoRA', 'lora', null, null, 'sd-1', 'SD 1.5', 'partial', /unknown/],
  ['LoRA on unknown checkpoint', 'lora', 'sd-1', null, null, null, 'partial', /checkpoint is unknown/],
  ['SD1 embedding on SDXL', 'embedding', 'sd-1', null, 'sdxl', null, 'incompatible', /embedding/],
  ['SD1 embedding on SD1', 'embedding', 'sd-1', null, 'sd-1', null, 'compatible', /SD 1\.x/],
  ['SD1 VAE on SD2', 'vae', 'sd-1', null, 'sd-2', null, 'compatible', /VAE fits/],
  ['SDXL VAE on SD1', 'vae', 'sdxl', null, 'sd-1', null, 'incompatible', /latent spaces differ/],
  ['Other-base LoRA on same other', 'lora', null, 'Hunyuan 1', null, 'Hunyuan 1', 'compatible', /hunyuan 1/],
]

describe('compatibility', () => {
  it.each(rows)('%s', (_label, type, af, ab, bf, bb, state, reason) => {
    const a = { type, ...resolveBase(af, ab) }
    const b = { type: 'checkpoint' as const, ...resolveBase(bf, bb) }
    const c = compatibility(a, b)
    expect(c.state).toBe(state)
    expect(c.reason).toMatch(reason)
  })
})
