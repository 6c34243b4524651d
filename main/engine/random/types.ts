/** A source of standard-normal float32 tensors (flat, row-major), drawn in call order. */
export interface NoiseSource {
  randn(shape: number[]): Float32Array
}

/** Number of elements of a shape, with a readable error for bad dimensions. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape.join(', ')}]`)
    n *= d
  }
  return n
}

/** Split a seed (0 <= seed < 2^64, number or bigint) into its low and high 32-bit words. */
export function seedWords(seed: number | bigint): [number, number] {
  let s: bigint
  if (typeof seed === 'bigint') s = seed
  else {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer (got ${seed})`)
    s = BigInt(seed)
  }
  if (s < 0n || s >= 1n << 64n) throw new Error(`seed must be in [0, 2^64) (got ${s})`)
  return [Number(s & 0xffffffffn), Number((s >> 32n) & 0xffffffffn)]
}
