import { MAX_SIDECAR_BYTES, readTextCapped } from '../../platform/read-capped'
import path from 'node:path'

/**
 * SDXL fine-tune lines that share SDXL's architecture (and run as SDXL) but whose LoRAs and prompting differ:
 * labelled from Civitai's `baseModel` where a sidecar gives it, else from the file's own metadata.
 */
export const SDXL_FLAVORS = ['pony', 'illustrious', 'noobai'] as const
export type SdxlFlavor = (typeof SDXL_FLAVORS)[number]

export const FLAVOR_LABEL: Record<SdxlFlavor, string> = {
  pony: 'Pony',
  illustrious: 'Illustrious',
  noobai: 'NoobAI',
}

/** Civitai `baseModel` ("Pony", "Illustrious", "NoobAI", ...) -> flavor; 'Pony V7' is AuraFlow, not SDXL. */
export function flavorFromBaseModel(baseModel: string | null | undefined): SdxlFlavor | undefined {
  const s = baseModel?.trim().toLowerCase() ?? ''
  if (/^pony\b/.test(s) && !/^pony v7/.test(s)) return 'pony'
  if (/^illustrious\b/.test(s)) return 'illustrious'
  if (/^noobai\b/.test(s)) return 'noobai'
  return undefined
}

/** From safetensors metadata hints (modelspec.title, kohya ss_sd_model_name): a name that says it. */
export function flavorFromHints(hints: Record<string, string> | undefined): SdxlFlavor | undefined {
  for (const k of ['modelspec.title', 'ss_sd_model_name']) {
    const v = hints?.[k]?.toLowerCase() ?? ''
    if (/\bnoob ?ai\b/.test(v)) return 'noobai'
    if (/\billustrious\b/.test(v)) return 'illustrious'
    if (/\bpony\b/.test(v) && !/\bv7\b/.test(v)) return 'pony'
  }
  return undefined
}

/**
 * Civitai's `baseModel` from a sidecar beside `file`: Civitai Helper `<stem>.civitai.info`, Stability Matrix
 * `<stem>.cm-info.json` (`BaseModel`) or Atelier's `<stem>.atelier.json`. Undefined when none says.
 */
export async function civitaiBaseModelBeside(file: string): Promise<string | undefined> {
  const stem = file.slice(0, file.length - path.extname(file).length)
  for (const [ext, key] of [
    ['.civitai.info', 'baseModel'],
    ['.atelier.json', 'baseModel'],
    ['.cm-info.json', 'BaseModel'],
  ] as const) {
    try {
      const j = JSON.parse(await readTextCapped(stem + ext, MAX_SIDECAR_BYTES)) as Record<string, unknown>
      const v = j[key] ?? (j.civitai as Record<string, unknown> | undefined)?.[key]
      if (typeof v === 'string' && v.trim()) return v
    } catch {
      // absent or unreadable: try the next
    }
  }
  return undefined
}
