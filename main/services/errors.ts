import type { ApiError, ErrorCode } from '../../preload/contract-types'

/** An error meant for the user: crosses the contract as `{code, message}`. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues?: ApiError['issues'],
  ) {
    super(message)
    this.name = 'AppError'
  }
}

/** Maps anything thrown to an ApiError; internal details stay in main's log. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof AppError)
    return { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) }
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'string'
  ) {
    const code = (err as { code: string }).code
    if (code === 'ENOSPC') return { code: 'disk-full', message: 'The disk is full.' }
    if (code === 'ENOENT')
      return { code: 'not-found', message: err instanceof Error ? err.message : 'Not found.' }
    if (code === 'ABORT_ERR') return { code: 'cancelled', message: 'Cancelled.' }
  }
  if (err instanceof Error && err.name === 'AbortError') return { code: 'cancelled', message: 'Cancelled.' }
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) }
}

/** A validation issue as zod reports it (the fields used here). */
export interface SchemaIssue {
  path: PropertyKey[]
  message: string
  code?: string
  origin?: string
  maximum?: number | bigint
  minimum?: number | bigint
}

const FIELD_LABELS: Record<string, string> = {
  cfgScale: 'CFG scale',
  batchSize: 'Batch size',
  batchCount: 'Batch count',
  clipSkip: 'CLIP skip',
  negativePrompt: 'Negative prompt',
  maskBlur: 'Mask blur',
  onlyMaskedPadding: 'Only-masked padding',
  variationSeed: 'Variation seed',
  variationStrength: 'Variation strength',
  libraryRoot: 'Library folder',
}

/** `cfgScale` → "CFG scale", `hires.width` → "Hires width", `loras.0.weight` → "LoRA 1 weight". */
export function fieldLabel(path: PropertyKey[]): string {
  if (path.length === 0) return 'The request'
  const words = path.map((p, i) => {
    if (typeof p === 'number') return String(p + 1)
    const key = String(p)
    if (FIELD_LABELS[key]) return i === 0 ? FIELD_LABELS[key] : FIELD_LABELS[key].toLowerCase()
    if (key === 'loras') return 'LoRA'
    if (key === 'imagePrompts') return 'Image prompt'
    const spaced = key.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()
    return i === 0 ? spaced.charAt(0).toUpperCase() + spaced.slice(1) : spaced
  })
  return words.join(' ')
}

/** One sentence per issue, written for people: "Steps must be at most 500." */
export function describeIssue(i: SchemaIssue): string {
  const field = fieldLabel(i.path)
  if (i.code === 'too_big' && i.maximum !== undefined)
    return i.origin === 'string'
      ? `${field} is too long (at most ${i.maximum} characters).`
      : i.origin === 'array'
        ? `${field}: at most ${i.maximum}.`
        : `${field} must be at most ${i.maximum}.`
  if (i.code === 'too_small' && i.minimum !== undefined)
    return i.origin === 'string'
      ? i.minimum === 1
        ? `${field} cannot be empty.`
        : `${field} is too short (at least ${i.minimum} characters).`
      : i.origin === 'array'
        ? `${field}: at least ${i.minimum}.`
        : `${field} must be at least ${i.minimum}.`
  if (i.code === 'invalid_type') return `${field} is missing or has the wrong type.`
  const msg = i.message.replace(/^Invalid input: /, '')
  return /^[A-Z]/.test(msg) && msg.toLowerCase().startsWith(field.toLowerCase())
    ? msg
    : `${field}: ${msg}${/[.!?]$/.test(msg) ? '' : '.'}`
}

/** The readable message and the field-level issues of a failed schema check. */
export function invalidInput(issues: readonly SchemaIssue[]): AppError {
  return new AppError(
    'invalid-input',
    issues.map(describeIssue).join(' '),
    issues.map((i) => ({ path: i.path.map(String).join('.'), message: describeIssue(i) })),
  )
}
