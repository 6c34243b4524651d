/**
 * Hand-offs from the Models section to the studio (the one place that writes the studio's state): "use in
 * Img2img" for a library model and "use these settings" for a preview image's generation parameters.
 */
import type { PreviewParams, PreviewResource, LibraryModel } from '../../../../preload/contract'
import { CLIP_SKIP_MAX, samplerAndSchedule, withTriggerWords, type LoraChoice } from '../studio/params'
import { setParams, studio } from '../studio/studio-state'
import { matchResources, resourceLabel, withoutLoraTags } from './image-resources'

export const DEFAULT_LORA_WEIGHT = 0.8

/** Checkpoint: select it. LoRA: add it at 0.8 (what `<lora:name:0.8>` does) and its trigger words to the prompt. */
export function sendToStudio(m: LibraryModel): string {
  if (m.type === 'checkpoint') {
    setParams({ model: m.id })
    return `${m.name} is the studio's checkpoint.`
  }
  if (m.type === 'lora') {
    const p = studio.get().params
    const loras = p.loras.some((l) => l.name === m.name)
      ? p.loras
      : [...p.loras, { id: m.id, name: m.name, weight: m.preferredWeight ?? DEFAULT_LORA_WEIGHT }]
    setParams({ loras, prompt: withTriggerWords(p.prompt, m.trainedWords) })
    return `${m.name} added at weight ${m.preferredWeight ?? DEFAULT_LORA_WEIGHT}${m.trainedWords.length ? ` with “${m.trainedWords.join(', ')}”` : ''}.`
  }
  if (m.type === 'embedding') {
    setParams({ prompt: withTriggerWords(studio.get().params.prompt, [m.name]) })
    return `“${m.name}” added to the prompt.`
  }
  return `${m.name} is ${m.type === 'vae' ? 'a VAE' : `an ${m.type}`}; pick it in the studio.`
}

/**
 * Prompt, negative prompt, seed, steps, CFG, sampler + schedule type, size, clip skip, RNG, checkpoint, VAE and
 * LoRAs (with their weights) of a preview image. Installed resources are selected; the message lists the ones not installed.
 * `models` defaults to the studio's library lists.
 */
export function applyImageSettings(
  g: PreviewParams,
  models?: readonly LibraryModel[],
): { message: string; missing: PreviewResource[] } {
  const patch: Parameters<typeof setParams>[0] = {}
  if (g.prompt) patch.prompt = g.prompt
  if (g.negativePrompt !== null) patch.negativePrompt = g.negativePrompt ?? ''
  if (g.steps !== null) patch.steps = Math.max(1, Math.min(150, Math.round(g.steps)))
  if (g.cfgScale !== null) patch.cfgScale = g.cfgScale
  if (g.seed !== null && g.seed >= 0 && g.seed < 2 ** 32) {
    patch.seed = g.seed
    patch.seedMode = 'fixed'
  }
  const skipped: string[] = []
  if (g.sampler) {
    const pair = samplerAndSchedule(g.sampler, g.scheduleType ?? undefined)
    if (pair) {
      patch.sampler = pair.sampler
      patch.scheduleType = pair.scheduleType
    } else skipped.push(`sampler “${g.sampler}”`)
  }
  if (g.width && g.height) {
    patch.width = Math.round(g.width / 8) * 8
    patch.height = Math.round(g.height / 8) * 8
    patch.sizeFromImage = false
  }
  const s = studio.get()
  const matches = matchResources(g.resources ?? [], models ?? [...s.checkpoints, ...s.loras, ...s.vaes])
  const missing: PreviewResource[] = []
  // Automatic (the checkpoint's own) unless the image names a VAE that is installed.
  patch.vae = ''
  const loras: LoraChoice[] = []
  const moved: string[] = []
  for (const { resource: r, installed: m } of matches) {
    if (!m) {
      if (r.kind !== 'checkpoint' || g.resources.filter((x) => x.kind === 'checkpoint').length === 1)
        missing.push(r)
      continue
    }
    if (r.kind === 'checkpoint') patch.model = m.id
    else if (r.kind === 'vae') patch.vae = m.id
    else if (r.kind === 'lora' && !loras.some((l) => l.id === m.id)) {
      // The prompt's `<lora:name:w>` tag is what A1111 runs; the studio's list carries the same LoRA once.
      loras.push({ id: m.id, name: m.name, weight: r.weight ?? DEFAULT_LORA_WEIGHT })
      if (r.name) moved.push(r.name)
    }
  }
  if (loras.length > 0) {
    patch.loras = loras
    if (patch.prompt) patch.prompt = withoutLoraTags(patch.prompt, moved)
  }
  patch.clipSkip = g.clipSkip !== null ? Math.max(1, Math.min(CLIP_SKIP_MAX, Math.round(g.clipSkip))) : 1
  if (g.rng) patch.rng = g.rng
  setParams(patch)
  const message =
    `Settings saved for the studio${skipped.length ? ` (not available: ${skipped.join(', ')})` : ''}.` +
    (missing.length
      ? ` Not installed: ${missing.map((r) => `${r.kind} ${resourceLabel(r)}`).join(', ')}.`
      : '')
  return { message, missing }
}
