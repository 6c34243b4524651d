/** Which of a preview image's resources are in the library (pure; used by "Use these settings"). */
import type { LibraryModel, PreviewResource } from '../../../../preload/contract'

const TYPE: Record<PreviewResource['kind'], LibraryModel['type']> = {
  checkpoint: 'checkpoint',
  lora: 'lora',
  embedding: 'embedding',
  vae: 'vae',
}

function stem(name: string): string {
  return name
    .replace(/\.(safetensors|ckpt|pt|bin)$/i, '')
    .trim()
    .toLowerCase()
}

/** The installed model for a resource: by Civitai version id, then hash (AutoV2 / full SHA-256), then name. */
export function findInstalled(r: PreviewResource, models: readonly LibraryModel[]): LibraryModel | undefined {
  const same = models.filter((m) => m.type === TYPE[r.kind] && !m.problem)
  if (r.modelVersionId !== null) {
    const byId = same.find((m) => m.civitai?.versionId === r.modelVersionId)
    if (byId) return byId
  }
  const h = r.hash
  if (h) {
    const byHash = same.find(
      (m) =>
        (m.sha256 !== null && m.sha256.startsWith(h)) || (m.autoV2 !== null && m.autoV2.toLowerCase() === h),
    )
    if (byHash) return byHash
  }
  if (r.name === null) return undefined
  const n = stem(r.name)
  return same.find((m) => stem(m.name) === n || stem(m.fileName) === n)
}

export interface ResourceMatch {
  resource: PreviewResource
  installed: LibraryModel | undefined
}

export function matchResources(
  rs: readonly PreviewResource[],
  models: readonly LibraryModel[],
): ResourceMatch[] {
  return rs.map((resource) => ({ resource, installed: findInstalled(resource, models) }))
}

/** A label for a resource that may only be known by version id or hash. */
export function resourceLabel(r: PreviewResource): string {
  return (
    r.name ?? (r.modelVersionId !== null ? `Civitai version ${r.modelVersionId}` : `hash ${r.hash ?? '?'}`)
  )
}

/**
 * The prompt without the `<lora:…>` / `<lyco:…>` tags of `names` (those LoRAs go to the studio's LoRA list, so
 * they are not applied twice); tags of LoRAs not installed stay.
 */
export function withoutLoraTags(prompt: string, names: readonly string[]): string {
  const drop = new Set(names.map((n) => n.toLowerCase()))
  return prompt
    .replace(/\s*<(?:lora|lyco):([^:>]+)[^>]*>(?:\s*,)?/gi, (tag, name: string) =>
      drop.has(name.trim().toLowerCase()) ? '' : tag,
    )
    .trim()
}
