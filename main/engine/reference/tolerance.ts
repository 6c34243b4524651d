import type { ReferenceCase } from './manifest'

/**
 * Which tolerance applies to an expected tensor (rules of the oracle README): `exact`; a key equal to the
 * tensor's name; names containing `timesteps` -> atol 1e-3; scheduler and pipeline aliases; else the
 * case-level atol/rtol.
 */

export type Tolerance = { exact: true } | { exact?: false; atol: number; rtol: number }

function asTol(v: unknown): Tolerance | undefined {
  if (v === 'exact' || v === true) return { exact: true }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if (o.exact === true) return { exact: true }
    if (typeof o.atol === 'number' || typeof o.rtol === 'number')
      return { atol: typeof o.atol === 'number' ? o.atol : 0, rtol: typeof o.rtol === 'number' ? o.rtol : 0 }
  }
  return undefined
}

const PIPELINE_ALIASES: [RegExp, string][] = [
  [/^step_latents/, 'final_latents'],
  [/^(output_image_postprocessed|mask_processed|masked_image)$/, 'output_image'],
]

export function toleranceFor(c: ReferenceCase, tensor: string, dtype?: string): Tolerance {
  const t = c.tolerance
  // Integers are exact unless the case gives that tensor its own tolerance (uint8 images: atol 1).
  if (dtype && /^(I|U|BOOL)/i.test(dtype)) return asTol(t[tensor]) ?? { exact: true }
  if (t.exact === true) return { exact: true }
  const own = asTol(t[tensor])
  if (own) return own
  if (tensor.includes('timesteps')) return { atol: 1e-3, rtol: 0 }
  if (c.name === 'schedulers') {
    const key = /sigmas|alphas_cumprod|betas/.test(tensor) ? 'sigmas' : 'steps'
    const s = asTol(t[key])
    if (s) return s
  }
  for (const [re, key] of PIPELINE_ALIASES) {
    if (re.test(tensor)) {
      const s = asTol(t[key])
      if (s) return s
    }
  }
  const caseLevel = asTol(t)
  if (caseLevel) return caseLevel
  // A case without a usable tolerance: the strictest sensible float check.
  return { atol: 1e-5, rtol: 1e-5 }
}

/**
 * The fp16 rule: the tolerance for a float tensor that passed through fp16 compute graphs (text encoders,
 * UNet, image encoder on a GPU provider, or their CPU check), derived in the oracle docs
 * (main/engine/reference/FP16.md) from measured fp16-vs-fp32 differences:
 *
 *   atol16 = max(atol32, min(2^16 * d64, 0.1 * max|expected|)),  rtol16 = rtol32
 *
 * d64 is the case's own measured fp32-vs-fp64 difference (caseFp64Diff): how strongly that computation
 * amplifies rounding. fp16's unit roundoff is 2^13 times fp32's, so its error is about 2^13 * d64. Measured
 * (bench/fp16.ts): up to 0.89 of that with the CPU forms of the fp16 graphs, up to 2.70 of it with real
 * fp16 WebGPU shaders (onnxruntime's kernels accumulate in fp16; Mesa's lavapipe), hence the factor
 * 2^16 = 8 * 2^13 (2.96 times the worst). Over many sampler steps d64 also carries chaotic growth, so the
 * term is capped at a tenth of the tensor's scale (worst measured pipeline difference: 0.079 of it); a case
 * without a measured d64 gets the cap alone. An 8-bit image quantised from a float image of the case gets
 * that image's fp16 atol in levels on top of its own (fp16QuantizedTolerance). Exact and integer tensors and the values of FP32_ALWAYS keep their fp32 tolerance. The rule applies only to cases
 * in which an fp16 graph ran; the fp32 tolerances themselves are never changed.
 */
/**
 * Tensors no fp16 graph computes: schedule values, masks, tokens, time ids, initial noise and VAE-encoded
 * latents (the VAE runs fp32), and what the JS side computes (LoRA/LyCORIS weight deltas, embedding vectors
 * and multipliers).
 */
const FP32_ALWAYS =
  /timesteps|sigma|alphas|betas|mask|tokens|time_ids|x_init|init_latent|latent_image_scaled|^delta|inputs_embeds|multipliers|^vec\./

export const FP16_RULE = { roundoffRatio: 2 ** 13, margin: 8, capOfScale: 0.1 } as const

export function fp16Tolerance(
  c: ReferenceCase,
  tensor: string,
  fp32: Tolerance,
  expected: ArrayLike<number>,
): Tolerance {
  if (fp32.exact) return fp32
  if (FP32_ALWAYS.test(tensor)) return fp32
  const d64 = caseFp64Diff(c, tensor)
  let scale = 0
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(Number(expected[i])))
  const cap = FP16_RULE.capOfScale * scale
  // A case without a measured d64: the cap alone.
  const term = d64 === undefined ? cap : Math.min(FP16_RULE.margin * FP16_RULE.roundoffRatio * d64, cap)
  return { atol: Math.max(fp32.atol, term), rtol: fp32.rtol }
}

/** uint8 levels per unit of a [-1, 1] image (A1111 / diffusers: round(255 * clamp((x + 1) / 2, 0, 1))). */
export const UINT8_PER_UNIT = 255 / 2

/**
 * The fp16 rule for an 8-bit image quantised from a float image of the same case (oracle-kdiff's
 * `output_uint8_hwc` from `output_image`): where the float image may differ by its fp16 atol, the 8-bit one
 * may differ by that many levels more than its own fp32 tolerance, rounded up. Exact tensors stay exact.
 */
export function fp16QuantizedTolerance(fp32: Tolerance, image16: Tolerance): Tolerance {
  if (fp32.exact || image16.exact) return fp32
  return { atol: fp32.atol + Math.ceil(UINT8_PER_UNIT * image16.atol), rtol: fp32.rtol }
}

/** The float image an 8-bit expected tensor was quantised from, where the case has one. */
export function quantizedFrom(c: ReferenceCase, tensor: string): string | undefined {
  return /uint8/.test(tensor) && c.expected.includes('output_image') ? 'output_image' : undefined
}

/**
 * Largest |a[i] - b[i]|: the one element-wise tensor compare of the engine tests. NaN when any difference
 * is NaN, so neither an upper nor a lower bound passes; arrays of different lengths are an error.
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: ${a.length} vs ${b.length} values`)
  let m = 0
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number))
    if (Number.isNaN(d)) return NaN
    if (d > m) m = d
  }
  return m
}

export interface Comparison {
  pass: boolean
  maxAbs: number
  /** Elements outside |a - b| <= atol + rtol * |b|. */
  bad: number
  count: number
  note?: string
}

type Numeric = ArrayLike<number> | BigInt64Array

export function compareTensors(
  actual: Numeric,
  expected: Numeric,
  tol: Tolerance,
  shapes?: { actual: number[]; expected: number[] },
): Comparison {
  if (shapes && shapes.actual.join(',') !== shapes.expected.join(','))
    return {
      pass: false,
      maxAbs: Infinity,
      bad: expected.length,
      count: expected.length,
      note: `shape [${shapes.actual}] vs [${shapes.expected}]`,
    }
  if (actual.length !== expected.length)
    return {
      pass: false,
      maxAbs: Infinity,
      bad: expected.length,
      count: expected.length,
      note: `${actual.length} vs ${expected.length} values`,
    }
  let maxAbs = 0
  let bad = 0
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i])
    const b = Number(expected[i])
    const d = Math.abs(a - b)
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d)
    const ok = tol.exact ? a === b : d <= tol.atol + tol.rtol * Math.abs(b)
    if (!ok) bad++
  }
  return { pass: bad === 0, maxAbs, bad, count: expected.length }
}

/**
 * The case's measured fp32-vs-fp64 difference (manifest `fp32_vs_fp64_max_abs_diff`, a number or an object
 * of numbers) for one tensor: its own entry where the object names it, else the largest float entry
 * (`uint8*` counts and `delta_max` are not float output differences). Undefined where the case has none.
 */
export function caseFp64Diff(c: ReferenceCase, tensor?: string): number | undefined {
  const v = (c as Record<string, unknown>).fp32_vs_fp64_max_abs_diff
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : undefined
  if (!v || typeof v !== 'object') return undefined
  const own = tensor ? (v as Record<string, unknown>)[tensor] : undefined
  if (typeof own === 'number' && own > 0) return own
  let max = 0
  const walk = (o: unknown, key: string): void => {
    if (typeof o === 'number') {
      if (!/^uint8|delta_max/.test(key) && Number.isFinite(o)) max = Math.max(max, o)
    } else if (o && typeof o === 'object') for (const [k, x] of Object.entries(o)) walk(x, k)
  }
  walk(v, '')
  return max > 0 ? max : undefined
}
