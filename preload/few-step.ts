/**
 * Few-step model presets as both sides see them (the library detects them, the generation panel offers
 * them as one click). Pure: no Node, no DOM.
 */

export type FewStepKind = 'lcm' | 'tcd' | 'lightning' | 'hyper' | 'turbo'

export interface FewStepPreset {
  kind: FewStepKind
  /** Short name for the chip, e.g. "SDXL Lightning 4-step LoRA". */
  label: string
  steps: number
  cfgScale: number
  /** A1111 sampler name (may not be available in this build: see pickSampler). */
  sampler: string
  /** A1111 schedule type ("SGM Uniform", "Karras"), when the authors name one. */
  scheduleType?: string
  /** The published ranges, shown beside the values. */
  stepsRange: [number, number]
  cfgRange: [number, number]
  /** Samplers to use, in order, when `sampler` is not available. */
  fallbackSamplers: string[]
  /** Where the values came from. */
  settingsFrom: 'description' | 'sample images' | 'published defaults'
  /** Why the model was recognised, for the tooltip. */
  reason: string
}

/** The preset's sampler if this build has it, else the first available fallback (undefined: none). */
export function pickSampler(p: FewStepPreset, available: readonly string[]): string | undefined {
  return [p.sampler, ...p.fallbackSamplers].find((s) => available.includes(s))
}

/**
 * The preset for a request: a few-step LoRA decides (it is what makes a normal checkpoint few-step), else
 * the checkpoint's own.
 */
export function presetForRequest(
  checkpoint: FewStepPreset | null | undefined,
  loras: readonly (FewStepPreset | null | undefined)[],
): FewStepPreset | null {
  return loras.find((l) => l !== null && l !== undefined) ?? checkpoint ?? null
}

/** "LCM · 4 steps · CFG 1" (the chip's text). */
export function presetSummary(p: FewStepPreset, sampler = p.sampler): string {
  const sched = p.scheduleType && !sampler.endsWith(p.scheduleType) ? ` ${p.scheduleType}` : ''
  return `${sampler}${sched} · ${p.steps} step${p.steps === 1 ? '' : 's'} · CFG ${p.cfgScale}`
}
