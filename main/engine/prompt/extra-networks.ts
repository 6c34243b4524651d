/**
 * Extra-network tags as A1111 parses them (`modules/extra_networks.py::parse_prompt`, regex `<(\w+):([^>]+)>`):
 * every tag is removed from the prompt text (replaced by nothing) and its arguments are split on ':'.
 *
 * LoRA arguments (`extensions-builtin/Lora/extra_networks_lora.py`):
 *   <lora:name>                 te = unet = 1.0
 *   <lora:name:0.8>             te = unet = 0.8
 *   <lora:name:0.8:0.5>         te = 0.8, unet = 0.5
 *   <lora:name:0.8:0.5:16>      ... dyn = 16
 *   <lora:name:te=0.8:unet=0.5:dyn=16>  named form
 * `lyco` is an alias of `lora` (A1111 1.5+). Other kinds (hypernet, ...) are returned in `others`.
 */

export interface LoraTag {
  /** The file name / alias written in the tag. */
  name: string
  /** Text-encoder multiplier: the weight shown to users. */
  weight: number
  /** UNet multiplier (defaults to `weight`). */
  unetWeight: number
  dynDim?: number
  /** 'lora' or 'lyco' as written. */
  kind: string
  /** The tag exactly as it appeared in the prompt. */
  raw: string
}

export interface ExtraNetworkTag {
  kind: string
  positional: string[]
  named: Record<string, string>
  raw: string
}

export interface ExtractedNetworks {
  /** The prompt with every tag removed (A1111 leaves the surrounding whitespace as it is). */
  text: string
  loras: LoraTag[]
  others: ExtraNetworkTag[]
  /** Tags that could not be understood (e.g. a non-numeric LoRA weight); they are removed from the text too. */
  warnings: string[]
}

const RE_EXTRA_NET = /<(\w+):([^>]+)>/g
const LORA_KINDS = new Set(['lora', 'lyco'])

function splitParams(args: string): { positional: string[]; named: Record<string, string> } {
  const positional: string[] = []
  const named: Record<string, string> = {}
  for (const item of args.split(':')) {
    // Python: item.split('=', 2) and len(parts) == 2 → exactly one '='
    const parts = item.split('=')
    if (parts.length === 2) named[parts[0] as string] = parts[1] as string
    else positional.push(item)
  }
  return { positional, named }
}

function parseWeight(s: string): number | undefined {
  const t = s.trim()
  if (t === '') return undefined
  const v = Number(t)
  return Number.isFinite(v) ? v : undefined
}

/** Remove `<kind:args>` tags from a prompt and return the LoRA list (and any other extra networks). */
export function extractExtraNetworks(prompt: string): ExtractedNetworks {
  const loras: LoraTag[] = []
  const others: ExtraNetworkTag[] = []
  const warnings: string[] = []
  const text = prompt.replace(RE_EXTRA_NET, (raw: string, kind: string, args: string) => {
    const { positional, named } = splitParams(args)
    if (!LORA_KINDS.has(kind)) {
      others.push({ kind, positional, named, raw })
      return ''
    }
    const name = positional[0] ?? ''
    const teText = named.te ?? positional[1]
    const unetText = named.unet ?? positional[2]
    const dynText = named.dyn ?? positional[3]
    const te = teText === undefined ? 1.0 : parseWeight(teText)
    const unet = unetText === undefined ? te : parseWeight(unetText)
    if (name === '' || te === undefined || unet === undefined) {
      warnings.push(`Ignored ${raw}: expected <${kind}:name:weight> with a numeric weight.`)
      return ''
    }
    const tag: LoraTag = { name, weight: te, unetWeight: unet, kind, raw }
    if (dynText !== undefined) {
      const dyn = Number.parseInt(dynText, 10)
      if (Number.isFinite(dyn)) tag.dynDim = dyn
    }
    loras.push(tag)
    return ''
  })
  return { text, loras, others, warnings }
}
