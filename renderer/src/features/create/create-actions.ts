/**
 * Midjourney's grid actions as requests, from the request that made the grid (pure: unit-tested).
 * U: the chosen image again with the hires fix (its seed, batch 1; the upscaler can be a model).
 * V: four variations of the chosen image: its seed for all four (sameSeed), A1111 variation seeds from a
 *    random one, at the variation strength. Re-roll: the same line with a new seed.
 */
import type { GenerateRequest } from '../../../../preload/contract-types'
import { createStore } from '../studio/store'

export interface CreateSettings {
  /** Images per grid (one batch); Midjourney's four. */
  gridSize: number
  /** U: hires fix scale, upscaler (latent mode or an upscaler model) and denoising strength. */
  upscaleScale: number
  upscaler: string
  upscaleStrength: number
  /** V: A1111 "Variation seed strength". */
  variationStrength: number
}

export const DEFAULT_CREATE_SETTINGS: CreateSettings = {
  gridSize: 4,
  upscaleScale: 2,
  upscaler: 'Latent',
  upscaleStrength: 0.5,
  variationStrength: 0.35,
}

export const GRID_SIZE = 4

export const createSettings = createStore<CreateSettings>(DEFAULT_CREATE_SETTINGS)

export function setCreateSettings(patch: Partial<CreateSettings>): void {
  createSettings.set(patch)
}

/** The line without its `--seed N` (the chosen image's seed wins; re-roll needs a new one). */
export function withoutSeedFlag(line: string): string {
  return line.replace(/(^|\s)--seed\s+\S+/gi, '').trim()
}

function base(grid: GenerateRequest): GenerateRequest {
  const {
    seed: _seed,
    batchSize: _b,
    batchCount: _c,
    hires: _h,
    variationSeed: _vs,
    variationStrength: _vt,
    sameSeed: _same,
    ...rest
  } = grid
  return { ...rest, prompt: withoutSeedFlag(grid.prompt) }
}

/** The variation an image came from (U of a V keeps it). */
function variationOf(grid: GenerateRequest, index: number): Partial<GenerateRequest> {
  if (!grid.variationStrength || grid.variationSeed === undefined || grid.variationSeed < 0) return {}
  return { variationSeed: grid.variationSeed + index, variationStrength: grid.variationStrength }
}

export function upscaleRequest(
  grid: GenerateRequest,
  index: number,
  seed: number,
  s: CreateSettings = createSettings.get(),
): GenerateRequest {
  return {
    ...base(grid),
    ...variationOf(grid, index),
    seed,
    batchSize: 1,
    batchCount: 1,
    hires: { scale: s.upscaleScale, upscaler: s.upscaler, strength: s.upscaleStrength },
  }
}

export function variationRequest(
  grid: GenerateRequest,
  seed: number,
  s: CreateSettings = createSettings.get(),
): GenerateRequest {
  return {
    ...base(grid),
    seed,
    sameSeed: true,
    batchSize: GRID_SIZE,
    batchCount: 1,
    variationSeed: -1,
    variationStrength: s.variationStrength,
  }
}

export function rerollRequest(grid: GenerateRequest): GenerateRequest {
  return {
    ...base(grid),
    seed: -1,
    batchSize: grid.batchSize ?? GRID_SIZE,
    batchCount: 1,
    ...(grid.hires ? { hires: grid.hires } : {}),
  }
}
