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
  // An A1111 / ComfyUI image made with a DPM++ SDE sampler used torchsde's Brownian tree for its noise; Atelier
  // runs the same sampler and schedule with per-step noise, so the pixels will differ.
  const notRestored = [...(r.notRestored ?? [])]
  if (p.sampler && findKSampler(p.sampler)?.sde && p.extra['SDE noise'] !== 'per-step')
    notRestored.push(
      `${p.sampler}: the Brownian-tree noise of A1111 / ComfyUI is not reproduced (same sampler and schedule, other pixels)`,
    )
  const pick = <K extends keyof typeof p>(k: K): Partial<Record<K, (typeof p)[K]>> =>
    p[k] === undefined ? {} : ({ [k]: p[k] } as Partial<Record<K, (typeof p)[K]>>)
  return {
    text: r.raw,
    source: r.source,
    ...(notRestored.length ? { notRestored } : {}),
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
    ...pick('vae'),
    ...pick('vaeHash'),
    ...pick('rng'),
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
