/**
 * The studio's one door to main: generation jobs, the gallery and the model library, typed, over
 * api/client. Every image crosses as bytes; nothing here names a file path.
 */
import type { LibraryModel, LibraryModelDetails, Req } from '../../../../preload/contract'
import { familyLabel } from '../../../../preload/family-label'
import type {
  GenerateRequest,
  GenerationProgress,
  GenerationResult,
  JobRef,
  OutputImage,
  Result,
} from '../../../../preload/contract-types'
import { api } from '../../api/client'
import type { RestorableParameters } from './params'

export type { LibraryModel }
export type CompatState = 'compatible' | 'partial' | 'incompatible'

export const generation = {
  start: (req: GenerateRequest): Promise<Result<JobRef>> =>
    // Uint8Array<ArrayBufferLike> vs the schema's Uint8Array<ArrayBuffer>: the same bytes on the wire.
    api.invoke('generate:start', req as Req<'generate:start'>),
  cancel: (jobId: string): Promise<Result<JobRef>> => api.invoke('generate:cancel', { jobId }),
  onProgress: (fn: (p: GenerationProgress) => void): (() => void) => api.on('generate:progress', fn),
  onFinished: (fn: (r: GenerationResult) => void): (() => void) => api.on('generate:finished', fn),
}

export const gallery = {
  list: (): Promise<Result<OutputImage[]>> => api.invoke('gallery:list', {}),
  image: (id: string): Promise<Result<Uint8Array>> => api.invoke('gallery:image', { id }),
  remove: (id: string): Promise<Result<{ id: string }>> => api.invoke('gallery:delete', { id }),
  parameters: async (png: Uint8Array): Promise<Result<RestorableParameters>> =>
    api.invoke('gallery:parameters', { png } as Req<'gallery:parameters'>),
}

export const library = {
  list: (type: 'checkpoint' | 'lora' | 'embedding' | 'vae'): Promise<Result<LibraryModel[]>> =>
    api.invoke('library:list', { type }),
  /** Details with the library's own compatibility verdicts against each installed checkpoint. */
  details: (id: string): Promise<Result<LibraryModelDetails>> => api.invoke('library:get', { id }),
  onChanged: (fn: () => void): (() => void) => api.on('library:changed', () => fn()),
}

/**
 * LoRA vs checkpoint base compatibility, shown and never used to hide (the library's three states):
 * another family cannot load; the same family with another sub-base (Pony on SDXL) or an unknown base
 * may load with odd results.
 */
export function loraCompatibility(
  lora: LibraryModel,
  checkpoint: LibraryModel | undefined,
): { state: CompatState; reason: string } {
  if (!checkpoint) return { state: 'partial', reason: 'no checkpoint chosen' }
  if (!lora.family || !checkpoint.family)
    return { state: 'partial', reason: 'base model unknown: it may not match' }
  if (lora.family !== checkpoint.family)
    return {
      state: 'incompatible',
      reason: `made for ${familyLabel(lora.family)}, the checkpoint is ${familyLabel(checkpoint.family)}`,
    }
  if (lora.subBase && checkpoint.subBase && lora.subBase !== checkpoint.subBase)
    return { state: 'partial', reason: `trained on ${lora.subBase}, the checkpoint is ${checkpoint.subBase}` }
  return { state: 'compatible', reason: `same base (${familyLabel(lora.family)})` }
}

/** Native resolution of a family (size presets scale around it). */
export function familyBase(family: string | null): number {
  return family === 'sdxl' || family === 'sd-3' || family?.startsWith('flux')
    ? 1024
    : family === 'sd-2'
      ? 768
      : 512
}
