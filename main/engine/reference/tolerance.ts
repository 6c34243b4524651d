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
