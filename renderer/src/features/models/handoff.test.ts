import { describe, expect, it } from 'vitest'
import type { LibraryModel, PreviewParams } from '../../../../preload/contract'
import { DEFAULT_PARAMS } from '../studio/params'
import { studio } from '../studio/studio-state'
import { applyImageSettings } from './handoff'

function model(id: string, type: LibraryModel['type'], name: string, sha256: string): LibraryModel {
  return {
    id,
    type,
    name,
    fileName: `${name}.safetensors`,
    sha256,
    autoV2: sha256.slice(0, 10),
    problem: null,
  } as unknown as LibraryModel
}

const params = (over: Partial<PreviewParams>): PreviewParams => ({
  prompt: 'a cat',
  negativePrompt: null,
  seed: 1,
  steps: 20,
  sampler: 'Euler',
  cfgScale: 7,
  clipSkip: null,
  width: 512,
  height: 512,
  model: null,
  scheduleType: null,
  vae: null,
  resources: [],
  ...over,
})

const vaeRes = (hash: string, name: string) =>
  ({ kind: 'vae', name, weight: null, modelVersionId: null, hash }) as const

describe('Use these settings: VAE, clip skip, RNG', () => {
  const models = [
    model('ck', 'checkpoint', 'dreamshaper_8', 'a'.repeat(64)),
    model('v1', 'vae', 'vae-ft-mse', '735e4c3a44' + 'b'.repeat(54)),
  ]

  it('selects an installed VAE by hash and applies clip skip and the RNG', () => {
    studio.set({ params: { ...DEFAULT_PARAMS } })
    const r = applyImageSettings(
      params({ clipSkip: 2, rng: 'gpu', resources: [vaeRes('735e4c3a44', 'renamed')] }),
      models,
    )
    expect(r.missing).toEqual([])
    expect(studio.get().params).toMatchObject({ vae: 'v1', clipSkip: 2, rng: 'gpu' })
    expect(r.message).not.toMatch(/clip skip/)
  })

  it('lists a VAE that is not installed and falls back to Automatic; no VAE named is Automatic', () => {
    studio.set({ params: { ...DEFAULT_PARAMS, vae: 'v1' } })
    const r = applyImageSettings(params({ resources: [vaeRes('0123456789', 'ClearVAE')] }), models)
    expect(r.missing.map((m) => [m.kind, m.hash])).toEqual([['vae', '0123456789']])
    expect(r.message).toMatch(/Not installed: vae ClearVAE/)
    expect(studio.get().params.vae).toBe('')
    studio.set({ params: { ...DEFAULT_PARAMS, vae: 'v1', clipSkip: 3, rng: 'cpu' } })
    applyImageSettings(params({ rng: 'gpu' }), models)
    expect(studio.get().params).toMatchObject({ vae: '', clipSkip: 1, rng: 'gpu' })
  })
})
