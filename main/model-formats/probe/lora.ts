import type { KeyView } from './keys'
import type { Base, LoraInfo, LoraModule, LoraNaming, Variant } from './types'
import { ProbeError } from './types'

/** kohya: `lora_unet_<path>.lora_down.weight`, `lora_te_…`, `lora_te1_…`, `lora_te2_…`, plus `.alpha`. */
const KOHYA = /^lora_(unet|te1|te2|te)_(.+?)\.(lora_down\.weight|lora_up\.weight|alpha)$/
/** LyCORIS parts (LoCon Tucker mid, LoHa, LoKr, DoRA, full diff) under kohya module names. */
const LYCORIS =
  /^lora_(unet|te1|te2|te)_([^.]+)\.(lora_mid\.weight|dora_scale|hada_w1_a|hada_w1_b|hada_w2_a|hada_w2_b|hada_t1|hada_t2|lokr_w1|lokr_w1_a|lokr_w1_b|lokr_w2|lokr_w2_a|lokr_w2_b|lokr_t2|diff|diff_b)$/
const UNSUPPORTED = /\.(oft_blocks|oft_diag|oft_R|boft_R|lora_magnitude_vector(?:\.[^.]+)*)$/
/** diffusers / PEFT: `….lora_A.weight` / `lora_B`, `….lora.down.weight` / `up`, `…_lora.down.weight` (old processors). */
const DIFFUSERS = /^(.+?)(?:\.lora_(A|B)(?:\.[^.]+)?|\.lora\.(down|up)|_lora\.(down|up))\.weight$/
const DIFFUSERS_ALPHA = /^(.+?)\.alpha$/

interface Module {
  part: LoraModule
  name: string
  down?: number[]
  alpha: boolean
  /** LyCORIS part shapes by part name. */
  lyco?: Map<string, number[]>
}

/** Rank and input width of a LyCORIS module from its part shapes (linear layers: [rank, in]). */
function lycoDown(parts: Map<string, number[]>): number[] | undefined {
  const hada = parts.get('hada_w1_b')
  if (hada) return [hada[0]!, hada[1]!]
  const w1 = parts.get('lokr_w1') ?? parts.get('lokr_w1_b')
  const w2 = parts.get('lokr_w2') ?? parts.get('lokr_w2_b')
  if (w1 && w2 && w1.length === 2 && w2.length === 2) {
    const rank = parts.get('lokr_w2_b')?.[0] ?? parts.get('lokr_w1_b')?.[0] ?? Math.max(w1[0]!, w2[0]!)
    return [rank, w1[1]! * w2[1]!]
  }
  const diff = parts.get('diff')
  if (diff) return [0, diff[1]!]
  return undefined
}

export type LycoAlgo = 'locon-tucker' | 'loha' | 'lokr' | 'dora' | 'full'

function lycoAlgos(parts: Map<string, number[]>): LycoAlgo[] {
  const out: LycoAlgo[] = []
  if (parts.has('lora_mid.weight')) out.push('locon-tucker')
  if (parts.has('hada_w1_a')) out.push('loha')
  if (parts.has('lokr_w1') || parts.has('lokr_w1_a')) out.push('lokr')
  if (parts.has('diff')) out.push('full')
  if (parts.has('dora_scale')) out.push('dora')
  return out
}

function diffusersPart(name: string, hasTe2: boolean): LoraModule {
  if (name.startsWith('text_encoder_2.') || name.startsWith('te2.')) return 'te2'
  if (name.startsWith('text_encoder.') || name.startsWith('te1.') || name.startsWith('te.'))
    return hasTe2 ? 'te1' : 'te'
  return 'unet'
}

function collect(v: KeyView): { naming: LoraNaming; modules: Map<string, Module> } | undefined {
  const modules = new Map<string, Module>()
  let kohya = 0
  let diffusers = 0
  let peft = 0
  const names = [...v.names()]
  const hasTe2 = names.some((n) => n.startsWith('text_encoder_2.'))
  for (const n of names) {
    const k = KOHYA.exec(n)
    if (k) {
      kohya++
      const [, part, mod, kind] = k as unknown as [string, LoraModule, string, string]
      const key = `${part}:${mod}`
      const m = modules.get(key) ?? { part, name: mod, alpha: false }
      if (kind === 'alpha') m.alpha = true
      else if (kind === 'lora_down.weight') m.down = v.shape(n)
      modules.set(key, m)
      continue
    }
    const ly = LYCORIS.exec(n)
    if (ly) {
      kohya++
      const [, part, mod, kind] = ly as unknown as [string, LoraModule, string, string]
      const key = `${part}:${mod}`
      const m = modules.get(key) ?? { part, name: mod, alpha: false }
      m.lyco ??= new Map()
      m.lyco.set(kind, v.shape(n) ?? [])
      modules.set(key, m)
      continue
    }
    if (UNSUPPORTED.test(n)) {
      throw new ProbeError(
        'this is an OFT/BOFT (orthogonal) network or a PEFT DoRA; LoRA, LoCon, LoHa, LoKr, kohya/LyCORIS DoRA ' +
          'and full-diff files are supported',
        'unsupported-lora',
      )
    }
    const d = DIFFUSERS.exec(n)
    if (d) {
      const mod = d[1]!
      if (d[2]) peft++
      else diffusers++
      const m = modules.get(mod) ?? { part: diffusersPart(mod, hasTe2), name: mod, alpha: false }
      if (d[2] === 'A' || d[3] === 'down' || d[4] === 'down') m.down = v.shape(n)
      modules.set(mod, m)
    }
  }
  for (const n of names) {
    const a = DIFFUSERS_ALPHA.exec(n)
    const m = a && !KOHYA.test(n) ? modules.get(a[1]!) : undefined
    if (m) m.alpha = true
  }
  if (modules.size === 0) return undefined
  for (const m of modules.values()) if (m.lyco && !m.down) m.down = lycoDown(m.lyco)
  const naming: LoraNaming = kohya >= diffusers + peft ? 'kohya' : peft > diffusers ? 'peft' : 'diffusers'
  return { naming, modules }
}

const TE_Q = /self_attn[._]q_proj$/
const ATTN2_K = /attn2[._](?:processor[._])?to_k$/

export interface LoraProbe {
  info: LoraInfo
  base: Base | null
  variant: Variant
}

/** Base family from hints in kohya / modelspec metadata. */
export function baseFromHints(meta: Record<string, string>): Base | null {
  const version = (meta.ss_base_model_version ?? '').toLowerCase()
  const arch = (meta['modelspec.architecture'] ?? '').toLowerCase()
  if (version.startsWith('sdxl') || arch.startsWith('stable-diffusion-xl')) return 'sdxl'
  if (version.startsWith('sd_v2') || meta.ss_v2 === 'True' || arch.startsWith('stable-diffusion-v2'))
    return 'sd-2'
  if (version.startsWith('sd_v1') || arch.startsWith('stable-diffusion-v1')) return 'sd-1'
  return null
}

/** Recognise a LoRA and read rank, modules and the base it targets; undefined when `v` is not a LoRA. */
export function probeLora(v: KeyView, meta: Record<string, string>): LoraProbe | undefined {
  const found = collect(v)
  if (!found) return undefined
  const mods = [...found.modules.values()]
  const ranks = [...new Set(mods.flatMap((m) => (m.down && m.down[0]! > 0 ? [m.down[0]!] : [])))].sort(
    (a, b) => a - b,
  )
  const algos = [...new Set(mods.flatMap((m) => (m.lyco ? lycoAlgos(m.lyco) : [])))].sort()
  if (ranks.length === 0 && !algos.includes('full'))
    throw new ProbeError('LoRA keys found but no lora_down / lora_A weights', 'unsupported-lora')
  const parts = new Set(mods.map((m) => m.part))
  const modules = (['unet', 'te', 'te1', 'te2'] as const).filter((p) => parts.has(p))
  const attn2 = mods.find((m) => m.part === 'unet' && ATTN2_K.test(m.name) && m.down)
  const contextDim = attn2?.down?.[1]
  const teWidth = (p: LoraModule) => mods.find((m) => m.part === p && TE_Q.test(m.name) && m.down)?.down?.[1]
  const textEncoderWidths: LoraInfo['textEncoderWidths'] = {}
  for (const p of ['te', 'te1', 'te2'] as const) {
    const w = teWidth(p)
    if (w !== undefined) textEncoderWidths[p] = w
  }
  const sgmUnetNames = mods.some(
    (m) => m.part === 'unet' && /^(input_blocks|middle_block|output_blocks)_/.test(m.name),
  )
  const projIn = mods.find((m) => m.part === 'unet' && /proj_in$/.test(m.name) && m.down)?.down

  // Ordered rules: standard widths, then structure, then metadata hints, then projection layout.
  let base: Base | null = null
  let variant: Variant = 'normal'
  const te0 = textEncoderWidths.te
  if (parts.has('te1') || parts.has('te2')) base = 'sdxl'
  else if (contextDim === 2048) base = 'sdxl'
  else if (contextDim === 1280) [base, variant] = ['sdxl', 'refiner']
  else if (contextDim === 768) base = 'sd-1'
  else if (contextDim === 1024) base = 'sd-2'
  else if (te0 === 768) base = 'sd-1'
  else if (te0 === 1024) base = 'sd-2'
  else
    base =
      baseFromHints(meta) ?? (sgmUnetNames ? 'sdxl' : projIn ? (projIn.length === 2 ? 'sd-2' : 'sd-1') : null)

  return {
    info: {
      naming: found.naming,
      rank: ranks[ranks.length - 1] ?? 0,
      ranks,
      modules,
      moduleCount: mods.length,
      hasAlpha: mods.some((m) => m.alpha),
      ...(contextDim !== undefined ? { contextDim } : {}),
      textEncoderWidths,
      sgmUnetNames,
      ...(algos.length ? { lycoris: algos } : {}),
    },
    base,
    variant,
  }
}
