import type { KeyView } from './keys'
import type { Base, EmbeddingInfo } from './types'

/** A diffusers textual_inversion concept: one tensor named after its placeholder token (`<cat-toy>`), [width]. */
const PLACEHOLDER = /^<[^<>]{1,100}>$/

/**
 * Textual inversion: `emb_params` (A1111/kohya), `string_to_param.*` (original), SDXL `clip_l` + `clip_g`, or a
 * diffusers `learned_embeds.bin` (one `<token>` tensor of one vector).
 */
export function probeEmbedding(v: KeyView): { info: EmbeddingInfo; base: Base | null } | undefined {
  const names = [...v.names()]
  if (names.length === 0 || names.length > 8) return undefined
  if (names.length === 1 && PLACEHOLDER.test(names[0] as string)) {
    const s = v.shape(names[0] as string)!
    if (s.length !== 1 && !(s.length === 2 && s[0] === 1)) return undefined
    const width = s[s.length - 1]!
    const base: Base | null = width === 768 ? 'sd-1' : width === 1024 ? 'sd-2' : null
    return { info: { vectors: 1, widths: { [names[0] as string]: width } }, base }
  }
  const widths: Record<string, number> = {}
  let vectors = 0
  for (const n of names) {
    const ok = n === 'emb_params' || n === 'clip_l' || n === 'clip_g' || n.startsWith('string_to_param.')
    if (!ok) return undefined
    const s = v.shape(n)!
    if (s.length < 1 || s.length > 2) return undefined
    widths[n] = s[s.length - 1]!
    vectors = Math.max(vectors, s.length === 2 ? s[0]! : 1)
  }
  const all = Object.values(widths)
  let base: Base | null = null
  if ('clip_g' in widths || 'clip_l' in widths) base = 'sdxl'
  else if (all.every((w) => w === 768)) base = 'sd-1'
  else if (all.every((w) => w === 1024)) base = 'sd-2'
  return { info: { vectors, widths }, base }
}
