import type { ImageParameters } from '../../../preload/contract-types'
import { findKSampler, splitSamplerName } from '../../engine/kdiffusion'
import { readGenerationParameters } from '../../engine/metadata'
import { AppError } from '../errors'

/** Generation parameters of any PNG (A1111 `parameters`, InvokeAI metadata, a ComfyUI graph) as the contract DTO. */
export function readImageParameters(png: Uint8Array): ImageParameters {
  let r
  try {
    r = readGenerationParameters(png)
  } catch (err) {
    throw new AppError('invalid-input', err instanceof Error ? err.message : String(err))
  }
  if (!r) return { text: null, prompt: '', negativePrompt: '', settings: {} }
  let p = r.params
  // A1111 names: 'DPM++ 2M Karras' -> 'DPM++ 2M' + Schedule type 'Karras' (as A1111's paste does); a
  // missing Schedule type reads as Automatic.
  const conventionKey = p.extra['Sampler convention']
  if (p.sampler && (conventionKey === undefined || conventionKey === 'a1111')) {
    const s = splitSamplerName(p.sampler, p.scheduleType, false)
    if (findKSampler(s.sampler)) p = { ...p, sampler: s.sampler, scheduleType: s.schedule }
  }
  const pick = <K extends keyof typeof p>(k: K): Partial<Record<K, (typeof p)[K]>> =>
    p[k] === undefined ? {} : ({ [k]: p[k] } as Partial<Record<K, (typeof p)[K]>>)
  return {
    text: r.raw,
    source: r.source,
    ...(r.notRestored?.length ? { notRestored: r.notRestored } : {}),
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
