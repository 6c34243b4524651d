import type { ImageParameters } from '../../../preload/contract-types'
import { readGenerationParameters } from '../../engine/metadata'
import { AppError } from '../errors'

/** Generation parameters of any PNG (A1111 `parameters`, or InvokeAI metadata) as the contract DTO. */
export function readImageParameters(png: Uint8Array): ImageParameters {
  let r
  try {
    r = readGenerationParameters(png)
  } catch (err) {
    throw new AppError('invalid-input', err instanceof Error ? err.message : String(err))
  }
  if (!r) return { text: null, prompt: '', negativePrompt: '', settings: {} }
  const p = r.params
  const pick = <K extends keyof typeof p>(k: K): Partial<Record<K, (typeof p)[K]>> =>
    p[k] === undefined ? {} : ({ [k]: p[k] } as Partial<Record<K, (typeof p)[K]>>)
  return {
    text: r.raw,
    source: r.source,
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    ...pick('steps'),
    ...pick('sampler'),
    ...pick('scheduleType'),
    ...pick('cfgScale'),
    ...pick('seed'),
    ...pick('width'),
    ...pick('height'),
    ...pick('model'),
    ...pick('modelHash'),
    ...pick('denoisingStrength'),
    ...pick('exactSteps'),
    ...pick('clipSkip'),
    ...pick('maskBlur'),
    ...pick('maskedContent'),
    ...pick('inpaintArea'),
    ...pick('maskedAreaPadding'),
    ...pick('loraHashes'),
    ...pick('civitaiResources'),
    settings: { ...p.extra },
  }
}
