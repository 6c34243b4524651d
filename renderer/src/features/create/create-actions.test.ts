import { describe, expect, it } from 'vitest'
import type { GenerateRequest } from '../../../../preload/contract-types'
import {
  DEFAULT_CREATE_SETTINGS,
  rerollRequest,
  upscaleRequest,
  variationRequest,
  withoutSeedFlag,
} from './create-actions'

const grid: GenerateRequest = {
  mode: 'txt2img',
  model: 'tiny',
  prompt: 'a cat --ar 2:3 --seed 7 --no text',
  steps: 12,
  seed: 7,
  batchSize: 4,
}

describe('Create grid actions', () => {
  it('U2: image 2 alone (its seed, batch 1) with the hires fix settings; the line keeps its flags but --seed', () => {
    const u = upscaleRequest(grid, 1, 8, {
      ...DEFAULT_CREATE_SETTINGS,
      upscaler: '4x-Ultra',
      upscaleScale: 1.5,
    })
    expect(u).toEqual({
      mode: 'txt2img',
      model: 'tiny',
      prompt: 'a cat --ar 2:3 --no text',
      steps: 12,
      seed: 8,
      batchSize: 1,
      batchCount: 1,
      hires: { scale: 1.5, upscaler: '4x-Ultra', strength: 0.5 },
    })
  })

  it('V3: four images with image 3’s seed and random A1111 variation seeds at the strength', () => {
    const v = variationRequest(grid, 9)
    expect(v).toMatchObject({
      seed: 9,
      sameSeed: true,
      batchSize: 4,
      variationSeed: -1,
      variationStrength: 0.35,
    })
    expect(v.prompt).toBe('a cat --ar 2:3 --no text')
  })

  it('U of a variation keeps its variation seed (so the upscale is that image)', () => {
    const varied = { ...grid, seed: 9, sameSeed: true, variationSeed: 500, variationStrength: 0.35 }
    expect(upscaleRequest(varied, 2, 9)).toMatchObject({
      seed: 9,
      variationSeed: 502,
      variationStrength: 0.35,
    })
    expect(upscaleRequest(varied, 2, 9).sameSeed).toBeUndefined()
  })

  it('re-roll: a new random seed for the same line', () => {
    expect(rerollRequest(grid)).toMatchObject({ seed: -1, batchSize: 4, prompt: 'a cat --ar 2:3 --no text' })
  })

  it('withoutSeedFlag', () => {
    expect(withoutSeedFlag('--seed 3 a --SEED 4 b')).toBe('a b')
  })
})
