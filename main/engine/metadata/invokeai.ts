import type { GenerationParameters, LoraHash } from './infotext'

/**
 * InvokeAI's `invokeai_metadata` PNG chunk (JSON, core metadata of v3/v4/v5) mapped onto GenerationParameters.
 *
 * - `clip_skip` counts skipped layers (0 = none); A1111's "Clip skip" counts from 1 (1 = none), so +1.
 * - LoRAs are appended to the prompt as `<lora:name:weight>` (how A1111 restores networks from metadata) and their
 *   hashes, when present, go to `loraHashes`.
 * - `scheduler` (e.g. "euler_a", "dpmpp_2m_k") is kept as the sampler name, untranslated.
 */

type Json = Record<string, unknown>

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

function modelName(m: unknown): { name?: string; hash?: string } {
  if (!isObj(m)) return {}
  return { name: str(m.name) ?? str(m.model_name), hash: str(m.hash) }
}

/** Returns undefined when the text is not InvokeAI metadata JSON. */
export function parseInvokeAIMetadata(text: string): GenerationParameters | undefined {
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isObj(j)) return undefined
  const extra: Record<string, string> = {}
  const r: GenerationParameters = {
    prompt: str(j.positive_prompt) ?? '',
    negativePrompt: str(j.negative_prompt) ?? '',
    extra,
  }
  const set = <K extends keyof GenerationParameters>(k: K, v: GenerationParameters[K] | undefined): void => {
    if (v !== undefined) r[k] = v
  }
  set('steps', num(j.steps))
  set('sampler', str(j.scheduler))
  set('cfgScale', num(j.cfg_scale))
  set('seed', num(j.seed))
  set('width', num(j.width))
  set('height', num(j.height))
  set('denoisingStrength', num(j.strength))
  const clipSkip = num(j.clip_skip)
  if (clipSkip !== undefined) r.clipSkip = clipSkip + 1
  const model = modelName(j.model)
  set('model', model.name)
  set('modelHash', model.hash)
  const vae = modelName(j.vae)
  set('vae', vae.name)
  set('vaeHash', vae.hash)

  const hashes: LoraHash[] = []
  const tags: string[] = []
  if (Array.isArray(j.loras)) {
    for (const l of j.loras as unknown[]) {
      if (!isObj(l)) continue
      const m = modelName(l.model ?? l.lora)
      if (!m.name) continue
      tags.push(`<lora:${m.name}:${num(l.weight) ?? 1}>`)
      if (m.hash) hashes.push({ name: m.name, hash: m.hash })
    }
  }
  if (tags.length > 0) r.prompt = r.prompt === '' ? tags.join(' ') : `${r.prompt} ${tags.join(' ')}`
  if (hashes.length > 0) r.loraHashes = hashes

  for (const k of ['generation_mode', 'app_version', 'rand_device', 'cfg_rescale_multiplier', 'seamless_x']) {
    const v = j[k]
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') extra[k] = String(v)
  }
  return r
}
