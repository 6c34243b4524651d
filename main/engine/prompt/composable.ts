/**
 * Composable diffusion sub-prompts, A1111 `AND` syntax (`modules/prompt_parser.py::get_multicond_prompt_list`):
 *
 *   "a cat AND a dog :0.5 AND blurry :-0.3"  →  [{a cat, 1}, {a dog, 0.5}, {blurry, -0.3}]
 *
 * Each sub-prompt is encoded on its own and the sampler combines them as
 *   denoised = uncond + Σ_i w_i · cfg · (cond_i − uncond)          (`CFGDenoiser.combine_denoised`)
 * Negative weights are allowed.
 */

export interface WeightedPrompt {
  text: string
  weight: number
}

// Python `\bAND\b` with a Unicode word boundary.
const RE_AND = /(?<![\p{L}\p{N}_])AND(?![\p{L}\p{N}_])/u
const RE_WEIGHT = /^([\s\S]*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$/

export function parseComposablePrompt(prompt: string): WeightedPrompt[] {
  return prompt.split(RE_AND).map((sub) => {
    const m = RE_WEIGHT.exec(sub)
    if (!m) return { text: sub, weight: 1.0 }
    return { text: m[1] ?? '', weight: m[2] !== undefined ? Number(m[2]) : 1.0 }
  })
}

/** Inverse of parseComposablePrompt: "a :2 AND b :-0.5" (weight 1 written without suffix). */
export function formatComposablePrompt(parts: readonly WeightedPrompt[]): string {
  return parts.map((p) => (p.weight === 1 ? p.text : `${p.text} :${p.weight}`)).join(' AND ')
}
