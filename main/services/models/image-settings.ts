/**
 * "Use these settings": the resources a Civitai preview image was made with, read from its free-form `meta`
 * (A1111 infotext keys, the Civitai A1111 extension's `resources[]`, the on-site generator's / ComfyUI
 * uploader's `civitaiResources[]`, and `<lora:…>` / `<lyco:…>` tags in the prompt).
 */
import type { PreviewResource } from '../../../preload/contract'
import { COMFY_SCHEDULER_LABELS, comfyToA1111, isComfyScheduler } from '../../engine/kdiffusion'

type Json = Record<string, unknown>

const KIND: Record<string, PreviewResource['kind']> = {
  checkpoint: 'checkpoint',
  model: 'checkpoint',
  lora: 'lora',
  locon: 'lora',
  lycoris: 'lora',
  lyco: 'lora',
  dora: 'lora',
  embed: 'embedding',
  embedding: 'embedding',
  textualinversion: 'embedding',
  vae: 'vae',
}

function kindOf(type: unknown): PreviewResource['kind'] | undefined {
  return typeof type === 'string' ? KIND[type.toLowerCase().replace(/[^a-z]/g, '')] : undefined
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null
}

function num(v: unknown): number | null {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
  return typeof n === 'number' && Number.isFinite(n) ? n : null
}

function hashOf(v: unknown): string | null {
  const h = str(v)?.toLowerCase()
  return h && /^[0-9a-f]{8,64}$/.test(h) ? h : null
}

/** `name: hash, name2: hash2` (A1111's `Lora hashes` / `TI hashes`, possibly quoted). */
function hashList(v: unknown): Map<string, string> {
  const out = new Map<string, string>()
  const s = str(v)?.replace(/^"|"$/g, '')
  if (!s) return out
  for (const part of s.split(',')) {
    const i = part.lastIndexOf(':')
    if (i <= 0) continue
    const h = hashOf(part.slice(i + 1))
    if (h) out.set(part.slice(0, i).trim(), h)
  }
  return out
}

const TAG = /<(lora|lyco):([^:>]+)(?::([^:>]*))?(?::[^>]*)?>/gi

/** `<lora:name>` / `<lora:name:0.7>` / `<lyco:name:0.7:0.5>` tags, weight 1 when none is written. */
export function promptLoras(prompt: string | null): { name: string; weight: number }[] {
  const out: { name: string; weight: number }[] = []
  for (const m of (prompt ?? '').matchAll(TAG)) {
    const w = num(m[3]?.trim())
    out.push({ name: m[2]!.trim(), weight: w ?? 1 })
  }
  return out
}

/** Every resource named by an image's meta (checkpoint first), merged by name / version id / hash. */
export function imageResources(meta: Json, prompt: string | null): PreviewResource[] {
  const out: PreviewResource[] = []
  const same = (a: PreviewResource, b: PreviewResource): boolean =>
    a.kind === b.kind &&
    ((a.name !== null && a.name.toLowerCase() === b.name?.toLowerCase()) ||
      (a.modelVersionId !== null && a.modelVersionId === b.modelVersionId) ||
      (a.hash !== null && b.hash !== null && (a.hash.startsWith(b.hash) || b.hash.startsWith(a.hash))))
  const add = (r: PreviewResource): void => {
    const prev = out.find((o) => same(o, r))
    if (!prev) {
      out.push(r)
      return
    }
    prev.name ??= r.name
    prev.modelVersionId ??= r.modelVersionId
    if (r.hash && (!prev.hash || r.hash.length > prev.hash.length)) prev.hash = r.hash
    if (prev.weight === null) prev.weight = r.weight
  }
  const res = (kind: PreviewResource['kind'], name: string | null, rest: Partial<PreviewResource> = {}) => ({
    kind,
    name,
    weight: kind === 'lora' ? (rest.weight ?? 1) : null,
    modelVersionId: rest.modelVersionId ?? null,
    hash: rest.hash ?? null,
  })

  const model = str(meta.Model)
  const modelHash = hashOf(meta['Model hash'])
  if (model || modelHash) add(res('checkpoint', model, { hash: modelHash }))
  // A1111: prompt tags carry the weights, `Lora hashes` the hashes.
  const loraHashes = hashList(meta['Lora hashes'])
  for (const t of promptLoras(prompt))
    add(res('lora', t.name, { weight: t.weight, hash: loraHashes.get(t.name) ?? null }))
  for (const [name, hash] of loraHashes) add(res('lora', name, { hash }))
  for (const [name, hash] of hashList(meta['TI hashes'])) add(res('embedding', name, { hash }))
  const vae = str(meta.VAE)
  const vaeHash = hashOf(meta['VAE hash'])
  if (vae || vaeHash)
    add(res('vae', vae?.replace(/\.(safetensors|pt|ckpt|bin)$/i, '') ?? null, { hash: vaeHash }))
  // The Civitai extension's `resources[]`: {type, name, weight?, hash?}.
  for (const r of Array.isArray(meta.resources) ? meta.resources : []) {
    if (!r || typeof r !== 'object') continue
    const o = r as Json
    const kind = kindOf(o.type)
    if (!kind) continue
    add(res(kind, str(o.name), { weight: num(o.weight) ?? 1, hash: hashOf(o.hash) }))
  }
  // `civitaiResources[]`: {type, modelVersionId, weight?, modelVersionName?}.
  for (const r of Array.isArray(meta.civitaiResources) ? meta.civitaiResources : []) {
    if (!r || typeof r !== 'object') continue
    const o = r as Json
    const kind = kindOf(o.type)
    const id = num(o.modelVersionId)
    if (!kind || id === null) continue
    add(res(kind, null, { weight: num(o.weight ?? o.strength) ?? 1, modelVersionId: id }))
  }
  return out
}

/** The `Schedule type` an image names, or null. */
export function imageScheduleType(meta: Json): string | null {
  return str(meta['Schedule type']) ?? str(meta.scheduleType) ?? str(meta.scheduler)
}

/**
 * The sampler and Schedule type of an image's meta as Atelier names them. ComfyUI uploads carry ComfyUI's
 * names (`dpmpp_2m_sde_gpu` + `scheduler: "karras"`, `sgm_uniform`, `ddim_uniform`): they are mapped to the
 * A1111 sampler and Schedule type that run them. A sampler Atelier does not run keeps its name (the studio
 * lists it as not restored); a ComfyUI-only scheduler (linear_quadratic) gives no Schedule type.
 */
export function imageSampler(
  sampler: string | null,
  meta: Json,
): { sampler: string | null; scheduleType: string | null } {
  const sched = imageScheduleType(meta)
  if (sampler) {
    const c = comfyToA1111(sampler, sched)
    if (c) return { sampler: c.sampler ?? sampler, scheduleType: c.scheduleType ?? null }
  }
  if (sched && isComfyScheduler(sched))
    return {
      sampler,
      scheduleType: COMFY_SCHEDULER_LABELS[sched.trim().toLowerCase() as keyof typeof COMFY_SCHEDULER_LABELS],
    }
  return { sampler, scheduleType: sched }
}

/** The noise generator an image's meta implies (see PreviewParams.rng). */
export function imageRng(meta: Json): 'cpu' | 'gpu' | null {
  const v = str(meta.RNG)?.toLowerCase()
  if (v === 'cpu') return 'cpu'
  if (v === 'gpu' || v === 'nv') return 'gpu'
  // ComfyUI (also Civitai's own generator) draws the start noise with torch's CPU generator.
  if (meta.comfy !== undefined || meta.workflow !== undefined) return 'cpu'
  // A1111 and Forge write `Model` / `Model hash` / `Version`, and `RNG` only when it is not their default (GPU).
  if ([meta.Version, meta.Model, meta['Model hash']].some((v) => str(v) !== null)) return 'gpu'
  return null
}
