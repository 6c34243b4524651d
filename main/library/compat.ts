import { familyLabel } from '../../preload/family-label'
import type { ModelFamily, ModelType, ProbeFamily } from './types'

/**
 * Base-model compatibility in three states, always shown (never used to hide a model):
 * - compatible: same family and the same (or an unknown) sub-base;
 * - partial: same family but a different sub-base (Pony LoRA on plain SDXL, SD 1.4 vs 1.5) or a base that
 *   cannot be determined: it loads, results may be off;
 * - incompatible: another family (tensor shapes differ; it cannot load).
 */
export type CompatState = 'compatible' | 'partial' | 'incompatible'

export interface Compatibility {
  state: CompatState
  reason: string
}

export interface BaseInfo {
  family: ModelFamily
  /** Finer base, e.g. 'sd-1.5', 'pony'; null when the string names only the family. */
  subBase: string | null
  /** Human label for reasons ("Pony", "SDXL 1.0"). */
  label: string
}

interface Rule {
  test: RegExp
  family: ModelFamily
  subBase: string | null
}

// Ordered: the first match wins (so 'Pony V7' before 'Pony', 'SDXL' variants before the plain name).
const RULES: Rule[] = [
  { test: /^sd ?1\.4\b/i, family: 'sd-1', subBase: 'sd-1.4' },
  { test: /^sd ?1\.5\b/i, family: 'sd-1', subBase: 'sd-1.5' },
  { test: /^sd ?1(\b|\.x)/i, family: 'sd-1', subBase: null },
  { test: /^sd ?2\.0\b/i, family: 'sd-2', subBase: 'sd-2.0' },
  { test: /^sd ?2\.1 unclip/i, family: 'sd-2', subBase: 'sd-2.1-unclip' },
  { test: /^sd ?2\.1\b/i, family: 'sd-2', subBase: 'sd-2.1' },
  { test: /^sd ?2(\b|\.x)/i, family: 'sd-2', subBase: null },
  { test: /^sd ?3\.5 medium/i, family: 'sd-3', subBase: 'sd-3.5-medium' },
  { test: /^sd ?3\.5/i, family: 'sd-3', subBase: 'sd-3.5-large' },
  { test: /^sd ?3\b/i, family: 'sd-3', subBase: 'sd-3' },
  // Distillations (Turbo, Lightning, Hyper, LCM) keep the parent's LoRA space.
  { test: /^sdxl\b/i, family: 'sdxl', subBase: 'sdxl' },
  { test: /^pony v7/i, family: 'auraflow', subBase: 'pony-v7' },
  { test: /^pony\b/i, family: 'sdxl', subBase: 'pony' },
  { test: /^illustrious\b/i, family: 'sdxl', subBase: 'illustrious' },
  { test: /^noobai\b/i, family: 'sdxl', subBase: 'noobai' },
  { test: /^playground v2/i, family: 'sdxl', subBase: 'playground-v2' },
  { test: /^kolors\b/i, family: 'kolors', subBase: null },
  { test: /^auraflow\b/i, family: 'auraflow', subBase: 'auraflow' },
  { test: /^flux\.1 s\b/i, family: 'flux-1', subBase: 'flux.1-s' },
  { test: /^flux\.1 d\b/i, family: 'flux-1', subBase: 'flux.1-d' },
  { test: /^flux\.1 krea/i, family: 'flux-1', subBase: 'flux.1-krea' },
  { test: /^flux\.1 kontext/i, family: 'flux-1', subBase: 'flux.1-kontext' },
  { test: /^flux\.1\b/i, family: 'flux-1', subBase: null },
  { test: /^flux\.2/i, family: 'flux-2', subBase: null },
]

/** Map a Civitai `baseModel` string (an open set) to family + sub-base; null for empty input. */
export function parseBaseModel(baseModel: string | null | undefined): BaseInfo | null {
  const s = baseModel?.trim()
  if (!s) return null
  for (const r of RULES) if (r.test.test(s)) return { family: r.family, subBase: r.subBase, label: s }
  return { family: 'other', subBase: s.toLowerCase(), label: s }
}

/** A1111 `<name>.json` "sd version" ("SD1" | "SD2" | "SDXL" | "Unknown"). */
export function familyFromA1111(sdVersion: unknown): ProbeFamily | null {
  if (typeof sdVersion !== 'string') return null
  const v = sdVersion.trim().toUpperCase()
  if (v === 'SD1') return 'sd-1'
  if (v === 'SD2') return 'sd-2'
  if (v === 'SDXL') return 'sdxl'
  return null
}

export function a1111SdVersion(family: ModelFamily | null): string {
  if (family === 'sd-1') return 'SD1'
  if (family === 'sd-2') return 'SD2'
  if (family === 'sdxl') return 'SDXL'
  return 'Unknown'
}

const SUB_BASE_LABEL: Record<string, string> = {
  'sd-1.4': 'SD 1.4',
  'sd-1.5': 'SD 1.5',
  'sd-2.0': 'SD 2.0',
  'sd-2.1': 'SD 2.1',
  'sd-2.1-unclip': 'SD 2.1 unCLIP',
  sdxl: 'plain SDXL',
  pony: 'Pony',
  illustrious: 'Illustrious',
  noobai: 'NoobAI',
  'playground-v2': 'Playground v2',
}

export function subBaseLabel(s: string): string {
  return SUB_BASE_LABEL[s] ?? s
}

/** Resolve a model's family and sub-base: header shapes decide the family, Civitai's string the sub-base. */
export function resolveBase(
  probeFamily: ProbeFamily | null,
  baseModel: string | null | undefined,
): { family: ModelFamily | null; subBase: string | null } {
  const civ = parseBaseModel(baseModel)
  if (probeFamily) {
    // A header that contradicts the label wins: shapes are facts, labels are typed by uploaders.
    return { family: probeFamily, subBase: civ && civ.family === probeFamily ? civ.subBase : null }
  }
  return civ ? { family: civ.family, subBase: civ.subBase } : { family: null, subBase: null }
}

export interface CompatSubject {
  name?: string
  type: ModelType
  family: ModelFamily | null
  subBase: string | null
}

// SD 1.x and 2.x share one VAE latent space; SDXL has its own despite identical shapes.
function sameVaeSpace(a: ModelFamily, b: ModelFamily): boolean {
  const one = (f: ModelFamily): boolean => f === 'sd-1' || f === 'sd-2'
  return a === b || (one(a) && one(b))
}

/** Can `addon` (a LoRA, embedding or VAE) be used with `base` (a checkpoint)? */
export function compatibility(addon: CompatSubject, base: CompatSubject): Compatibility {
  const what = addon.type === 'embedding' ? 'embedding' : addon.type === 'vae' ? 'VAE' : addon.type
  if (!addon.family || !base.family) {
    const unknown = !addon.family ? `this ${what}` : 'the checkpoint'
    return { state: 'partial', reason: `The base model of ${unknown} is unknown; it may not work.` }
  }
  const af = addon.family
  const bf = base.family
  if (addon.type === 'vae') {
    if (sameVaeSpace(af, bf))
      return { state: 'compatible', reason: `${familyLabel(af)} VAE fits a ${familyLabel(bf)} checkpoint.` }
    return {
      state: 'incompatible',
      reason: `${familyLabel(af)} VAE on a ${familyLabel(bf)} checkpoint: the latent spaces differ.`,
    }
  }
  if (af !== bf || af === 'other') {
    if (af === 'other' && bf === 'other' && addon.subBase && addon.subBase === base.subBase)
      return { state: 'compatible', reason: `Both are ${addon.subBase}.` }
    return {
      state: 'incompatible',
      reason: `${familyLabel(af)} ${what} on a ${familyLabel(bf)} checkpoint: different architecture, it cannot load.`,
    }
  }
  if (!addon.subBase || !base.subBase) {
    return { state: 'compatible', reason: `Both are ${familyLabel(af)}.` }
  }
  if (addon.subBase === base.subBase) {
    return { state: 'compatible', reason: `Both are ${subBaseLabel(addon.subBase)}.` }
  }
  return {
    state: 'partial',
    reason:
      `${subBaseLabel(addon.subBase)} ${what} on a ${subBaseLabel(base.subBase)} checkpoint: same ` +
      `${familyLabel(af)} architecture but trained for a different base; results may be off.`,
  }
}
