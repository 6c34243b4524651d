import path from 'node:path'
import { SafetensorsFile } from '../safetensors'
import type { LycoKind, LycoPart } from './lycoris'
import { LYCO_PARTS, lycoKind } from './lycoris'

/**
 * LoRA files as low-rank pairs per target module, in the formats people share:
 * - kohya / A1111: `lora_unet_<module path with _>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
 *   `lora_te_<...>` for the text encoder (1x1 and kxk conv pairs included);
 * - diffusers / PEFT: `<module>.lora_A.weight` / `lora_B`, `<module>.lora.down.weight` / `up`,
 *   `<module>.lora_linear_layer.down.weight` / `up`, old attention processors `attn1.processor.to_q_lora.down`,
 *   with `unet.` / `text_encoder.` prefixes (or `base_model.model.` from PEFT).
 */

/** The graph a pair modifies: SDXL's second text encoder is `text_encoder_2` (kohya `lora_te2_`). */
export type LoraTarget = 'unet' | 'text_encoder' | 'text_encoder_2'

export interface LoraPair {
  target: LoraTarget
  /** kohya: the underscore-joined module path; diffusers: the dotted module path. */
  module: string
  naming: 'kohya' | 'diffusers'
  /** Source keys, for error messages. */
  downKey: string
  upKey: string
  alphaKey?: string
}

/**
 * A kohya-named module that is not a plain low-rank pair: LoCon with Tucker `lora_mid`, LoHa, LoKr, full
 * `diff`, or any of them with DoRA's `dora_scale`. Its weight update is computed from `parts`.
 */
export interface LycoModule {
  target: LoraTarget
  module: string
  naming: 'kohya'
  kind: LycoKind
  /** Tensor key of each part the module has. */
  parts: Partial<Record<LycoPart, string>>
}

export interface LoraFile {
  path: string
  /** Plain low-rank pairs (LoRA / LoCon without lora_mid or dora_scale): added as graph branches. */
  pairs: LoraPair[]
  /** LyCORIS modules whose update is computed as a weight delta. */
  modules: LycoModule[]
  /** Tensors that are neither pairs nor alphas (ignored; counted for diagnostics). */
  ignored: string[]
  st: SafetensorsFile
}

export class LoraError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'LoraError'
  }
}

const KOHYA = /^lora_(unet|te|te1|te2)_([^.]+)\.(.+)$/
const KOHYA_PARTS = new Set<string>(LYCO_PARTS)
/** Networks no engine here computes: OFT / BOFT (orthogonal), PEFT DoRA magnitudes, GLoRA, IA3. */
const UNSUPPORTED =
  /\.(oft_blocks|oft_diag|oft_R|boft_R|lora_magnitude_vector(?:\.default)?(?:\.weight)?|a1\.weight|on_input)$/
const DIFFUSERS: [RegExp, 'down' | 'up'][] = [
  [/^(.+)\.lora_A(?:\.default)?\.weight$/, 'down'],
  [/^(.+)\.lora_B(?:\.default)?\.weight$/, 'up'],
  [/^(.+)\.lora(?:_linear_layer)?\.down\.weight$/, 'down'],
  [/^(.+)\.lora(?:_linear_layer)?\.up\.weight$/, 'up'],
  [/^(.+)_lora\.down\.weight$/, 'down'],
  [/^(.+)_lora\.up\.weight$/, 'up'],
]

/** Normalises a diffusers module path: drops component prefixes and old processor names. */
function diffusersModule(raw: string): { target: LoraTarget; module: string } {
  let m = raw.replace(/^base_model\.model\./, '')
  let target: LoraTarget = 'unet'
  if (m.startsWith('text_encoder_2.') || m.startsWith('te2.')) {
    target = 'text_encoder_2'
    m = m.slice(m.indexOf('.') + 1)
  } else if (m.startsWith('text_encoder.')) {
    target = 'text_encoder'
    m = m.slice('text_encoder.'.length)
  } else if (m.startsWith('unet.')) m = m.slice('unet.'.length)
  else if (m.startsWith('text_model.')) target = 'text_encoder'
  // Old attention processors: attn1.processor.to_q_lora -> attn1.to_q; to_out_lora -> to_out.0
  m = m.replace(/\.processor\.(to_[qkv])$/, '.$1').replace(/\.processor\.to_out$/, '.to_out.0')
  return { target, module: m }
}

export async function readLora(file: string): Promise<LoraFile> {
  const st = await SafetensorsFile.open(file)
  try {
    const keys = st.keys()
    const groups = new Map<
      string,
      {
        target: LoraTarget
        module: string
        naming: LoraPair['naming']
        down?: string
        up?: string
        alpha?: string
      }
    >()
    const ignored: string[] = []
    const kohya = new Map<string, { target: LoraTarget; module: string; parts: Map<string, string> }>()
    for (const k of keys) {
      if (UNSUPPORTED.test(k))
        throw new LoraError(
          `${path.basename(file)}: this network type is not supported (${k}); LoRA, LoCon, LoHa, LoKr, DoRA ` +
            'and full-diff files are',
          'unsupported-lora',
        )
      const kh = KOHYA.exec(k)
      if (kh && KOHYA_PARTS.has(kh[3] as string)) {
        const [, part, mod, role] = kh as unknown as [string, string, string, string]
        const id = `${part}:${mod}`
        const g = kohya.get(id) ?? {
          target: part === 'unet' ? 'unet' : part === 'te2' ? 'text_encoder_2' : 'text_encoder',
          module: mod,
          parts: new Map<string, string>(),
        }
        g.parts.set(role, k)
        kohya.set(id, g)
        continue
      }
      let matched = false
      for (const [re, role] of DIFFUSERS) {
        const m = re.exec(k)
        if (!m) continue
        const { target, module } = diffusersModule(m[1] as string)
        const id = `${target}:${module}`
        const g = groups.get(id) ?? { target, module, naming: 'diffusers' }
        g[role] = k
        groups.set(id, g)
        matched = true
        break
      }
      if (!matched && !k.endsWith('.alpha')) ignored.push(k)
    }
    // diffusers-style alphas (`<module>.alpha`) attach after all pairs are known.
    for (const k of keys) {
      if (!k.endsWith('.alpha') || KOHYA.test(k)) continue
      const { target, module } = diffusersModule(k.slice(0, -'.alpha'.length))
      const g = groups.get(`${target}:${module}`)
      if (g) g.alpha = k
      else ignored.push(k)
    }
    const pairs: LoraPair[] = []
    const modules: LycoModule[] = []
    for (const [id, g] of kohya) {
      const roles = new Set(g.parts.keys())
      const kind = lycoKind(roles)
      if (!kind) {
        if (roles.size === 1 && roles.has('alpha')) continue // an alpha without weights: nothing to apply
        const has = (r: string): boolean => roles.has(r)
        throw new LoraError(
          `${path.basename(file)}: module ${g.module} has ${[...roles].sort().join(', ')}` +
            (has('lora_down.weight') ? ' but no lora_up' : has('lora_up.weight') ? ' but no lora_down' : '') +
            '; not a complete LoRA/LyCORIS module',
          'bad-lora',
        )
      }
      if (kind === 'lora' && !roles.has('lora_mid.weight') && !roles.has('dora_scale')) {
        groups.set(id, {
          target: g.target,
          module: g.module,
          naming: 'kohya',
          down: g.parts.get('lora_down.weight'),
          up: g.parts.get('lora_up.weight'),
          alpha: g.parts.get('alpha'),
        })
        continue
      }
      modules.push({
        target: g.target,
        module: g.module,
        naming: 'kohya',
        kind,
        parts: Object.fromEntries(g.parts) as LycoModule['parts'],
      })
    }
    for (const g of groups.values()) {
      if (!g.down || !g.up)
        throw new LoraError(
          `${path.basename(file)}: module ${g.module} has ${g.down ? 'lora_down but no lora_up' : 'lora_up but no lora_down'}`,
          'bad-lora',
        )
      pairs.push({
        target: g.target,
        module: g.module,
        naming: g.naming,
        downKey: g.down,
        upKey: g.up,
        alphaKey: g.alpha,
      })
    }
    if (pairs.length === 0 && modules.length === 0)
      throw new LoraError(
        `${path.basename(file)}: not a LoRA (no lora_down/lora_up or lora_A/lora_B tensors)`,
        'not-lora',
      )
    return { path: file, pairs, modules, ignored, st }
  } catch (err) {
    await st.close()
    throw err
  }
}

/**
 * Maps LoRA module names to canonical weight names (`<module>.weight`) of one component, with no table:
 * every canonical module path is indexed both dotted and with '.' -> '_' (kohya's spelling). `aliases`
 * adds more spellings (e.g. LDM names for kohya files trained on original-layout UNets).
 */
export class ModuleIndex {
  private readonly dotted = new Map<string, string>()
  private readonly underscored = new Map<string, string | null>()

  constructor(weightNames: Iterable<string>, aliases: Iterable<[string, string]> = []) {
    for (const n of weightNames) {
      if (!n.endsWith('.weight')) continue
      const mod = n.slice(0, -'.weight'.length)
      this.dotted.set(mod, n)
      this.addUnderscored(mod.replace(/\./g, '_'), n)
    }
    for (const [alias, canonicalModule] of aliases) {
      const n = `${canonicalModule}.weight`
      if (this.dotted.has(canonicalModule)) this.addUnderscored(alias.replace(/\./g, '_'), n)
    }
  }

  private addUnderscored(key: string, weight: string): void {
    const prev = this.underscored.get(key)
    // Two modules with the same underscore spelling: ambiguous, refuse rather than guess.
    this.underscored.set(key, prev !== undefined && prev !== weight ? null : weight)
  }

  /** The canonical weight name for a LoRA module, or undefined. */
  resolve(pair: Pick<LoraPair, 'module' | 'naming'>): string | undefined {
    if (pair.naming === 'diffusers') {
      const hit = this.dotted.get(pair.module)
      if (hit) return hit
    }
    return this.underscored.get(pair.module.replace(/\./g, '_')) ?? undefined
  }
}
