import type { ReferenceCase, ReferenceManifest } from '../manifest'
import type { ReferenceModels } from '../models'

export interface RefTensor {
  dtype: 'F32' | 'I64' | 'U8'
  shape: number[]
  data: Float32Array | BigInt64Array | Uint8Array
}

export interface CaseContext {
  manifest: ReferenceManifest
  def: ReferenceCase
  models: ReferenceModels
  /** A tensor the case lists as `given` (reading anything else is refused). */
  given(name: string): Promise<RefTensor>
  /** Whether the case lists `name` as given. */
  hasGiven(name: string): boolean
  /** Whether the case wants `name` (expected or trace). */
  wants(name: string): boolean
  log(message: string): void
  signal?: AbortSignal
}

/** Produces a case's outputs by tensor name (expected, and trace where cheap). */
export type CaseRunner = (ctx: CaseContext) => Promise<Record<string, RefTensor>>

export function f32(shape: number[], data: Float32Array): RefTensor {
  return { dtype: 'F32', shape, data }
}

/** Clamp(x / 2 + 0.5, 0, 1): pipeline image postprocessing. */
export function postprocess(image: Float32Array): Float32Array {
  const out = new Float32Array(image.length)
  for (let i = 0; i < image.length; i++) out[i] = Math.min(1, Math.max(0, image[i]! / 2 + 0.5))
  return out
}
