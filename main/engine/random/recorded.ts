import type { NoiseSource } from './types'
import { shapeSize } from './types'

export interface RecordedTensor {
  data: Float32Array
  /** When given, randn() must be asked for exactly this shape; otherwise only the size is checked. */
  shape?: number[]
  /** Shown in errors (e.g. the oracle tensor name "noise_01"). */
  name?: string
}

/**
 * Hands out recorded draws in order (the reference runner fills it with an oracle case's
 * noise_00, noise_01, ...). Asking for another shape, or for more draws than were recorded, is an
 * error that names the draw.
 */
export class RecordedNoise implements NoiseSource {
  private readonly draws: RecordedTensor[]
  private next = 0

  constructor(tensors: (RecordedTensor | Float32Array)[]) {
    this.draws = tensors.map((t) => (t instanceof Float32Array ? { data: t } : t))
  }

  /** Draws not yet handed out. */
  get remaining(): number {
    return this.draws.length - this.next
  }

  /** Draws handed out so far. */
  get used(): number {
    return this.next
  }

  randn(shape: number[]): Float32Array {
    const i = this.next
    const d = this.draws[i]
    const label = (k: number, t?: RecordedTensor): string => (t?.name ? `draw ${k} (${t.name})` : `draw ${k}`)
    if (!d) {
      throw new Error(
        `RecordedNoise: ${label(i)} of shape [${shape.join(', ')}] was requested but only ${this.draws.length} draws were recorded`,
      )
    }
    const n = shapeSize(shape)
    const shapeOk = d.shape
      ? d.shape.length === shape.length && d.shape.every((v, k) => v === shape[k])
      : true
    if (!shapeOk || d.data.length !== n) {
      const rec = d.shape ? `[${d.shape.join(', ')}]` : `${d.data.length} elements`
      throw new Error(`RecordedNoise: ${label(i, d)} is ${rec} but [${shape.join(', ')}] was requested`)
    }
    this.next++
    return d.data.slice()
  }
}
