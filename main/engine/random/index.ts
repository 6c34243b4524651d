export type { NoiseSource } from './types'
export { seedWords, shapeSize } from './types'
export { MT19937 } from './mt19937'
export { TorchCpuGenerator } from './torch-cpu'
export { PhiloxCudaGenerator } from './philox'
export { RecordedNoise } from './recorded'
export type { RecordedTensor } from './recorded'

import type { NoiseSource } from './types'

/** A scheduler step noise callback drawing tensors of `shape` from `source`. */
export function stepNoise(source: NoiseSource, shape: number[]): () => Float32Array {
  return () => source.randn(shape)
}
