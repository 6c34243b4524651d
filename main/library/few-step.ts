/**
 * Few-step models: LCM, TCD, SDXL-Lightning, Hyper-SD and Turbo checkpoints and LoRAs, recognised from what
 * the library knows about a file (Civitai base model, names, tags, trained words, the A1111 sidecar) and
 * turned into the settings their authors publish: steps, CFG, sampler and schedule type.
 *
 * Published defaults (model cards):
 * - LCM / LCM-LoRA (latent-consistency): LCM sampler, 4–8 steps, CFG 1–2 (guidance off or nearly).
 * - TCD (h1t/TCD-SD15, TCD-SDXL-LoRA): TCD sampler, 4 steps (2–8), guidance off.
 * - SDXL-Lightning (ByteDance): Euler with the sgm_uniform ("trailing") schedule, steps = the variant's
 *   (1/2/4/8), guidance off.
 * - Hyper-SD (ByteDance): N-step LoRAs with DDIM/Euler on trailing (sgm_uniform) timesteps, guidance off;
 *   the "CFG" variants keep guidance 5–8; the 1-step unified LoRA with TCD.
 * - SD/SDXL-Turbo (Stability): Euler a, 1–4 steps, guidance off.
 * Guidance "off" is CFG 1 in A1111's terms (one UNet pass per step).
 *
 * Civitai merges ("SDXL Lightning" base models with their own recommendation) often state settings in their
 * description ("Steps: 4-6, CFG 1.5, Sampler: DPM++ SDE Karras"): those win over the defaults, and the
 * sample images' generation data come next.
 */
import type { FewStepKind, FewStepPreset } from '../../preload/few-step'

/** What detection reads; every field is optional (a bare local file has only its name). */
export interface FewStepFacts {
  type?: string | null
  family?: string | null
  fileName?: string | null
  name?: string | null
  baseModel?: string | null
  civitaiModelName?: string | null
  civitaiVersionName?: string | null
  tags?: readonly string[] | null
  trainedWords?: readonly string[] | null
  /** Civitai description (HTML) or the A1111 sidecar's description. */
  description?: string | null
  /** A1111 sidecar notes / activation text. */
  notes?: string | null
  /** Generation data of the version's sample images (Civitai `images[].meta`). */
  imageMeta?: readonly Record<string, unknown>[] | null
}

const KIND_LABEL: Record<FewStepKind, string> = {
  lcm: 'LCM',
  tcd: 'TCD',
  lightning: 'Lightning',
  hyper: 'Hyper-SD',
  turbo: 'Turbo',
}

/** A word in a file or model name; `_`, `-`, `.` and digits count as separators. */
function word(w: string): RegExp {
  return new RegExp(`(?:^|[^a-z])${w}(?![a-z])`, 'i')
}

const NAME_PATTERNS: [FewStepKind, RegExp][] = [
  ['lcm', word('lcm')],
  ['lcm', /latent[\s_-]*consistency/i],
  ['tcd', word('tcd')],
  ['tcd', /trajectory[\s_-]*consistency/i],
  ['lightning', word('lightning')],
  ['hyper', /hyper[\s_-]*sd/i],
  ['hyper', /(?:^|[^a-z])hyper(?:[\s_-]*sdxl|[\s_-]*sd15|[\s_-]*\d+[\s_-]*steps?)/i],
  ['turbo', word('turbo')],
  ['turbo', /(?:^|[^a-z])sdxl[\s_-]*turbo|sd[\s_-]*turbo/i],
]

function kindOf(text: string): FewStepKind | null {
  for (const [k, re] of NAME_PATTERNS) if (re.test(text)) return k
  return null
}

/** "4step", "8-steps", "2 step", "1-step" in a name. */
function stepsInName(text: string): number | null {
  const m = /(?:^|[^0-9])(\d{1,2})[\s_-]*steps?(?![a-z])/i.exec(text)
  const n = m ? Number(m[1]) : NaN
  return Number.isFinite(n) && n >= 1 && n <= 50 ? n : null
}

function stripHtml(s: string): string {
  return s
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|li|h\d|div)>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&quot;/g, '"')
}

/** Sampler names as authors write them, longest first, mapped to A1111 names. */
const SAMPLER_NAMES: [RegExp, string][] = [
  [/dpm\+\+\s*2m\s*sde\s*karras/i, 'DPM++ 2M SDE Karras'],
  [/dpm\+\+\s*2m\s*sde/i, 'DPM++ 2M SDE'],
  [/dpm\+\+\s*2m\s*karras/i, 'DPM++ 2M Karras'],
  [/dpm\+\+\s*2m/i, 'DPM++ 2M'],
  [/dpm\+\+\s*sde\s*karras/i, 'DPM++ SDE Karras'],
  [/dpm\+\+\s*sde/i, 'DPM++ SDE'],
  [/euler[\s_]*a(?:ncestral)?(?![a-z])/i, 'Euler a'],
  [/(?:^|[^a-z])euler(?![a-z])/i, 'Euler'],
  [/(?:^|[^a-z])lcm(?![a-z])/i, 'LCM'],
  [/(?:^|[^a-z])tcd(?![a-z])/i, 'TCD'],
  [/(?:^|[^a-z])ddim(?![a-z])/i, 'DDIM'],
  [/(?:^|[^a-z])unipc(?![a-z])/i, 'UniPC'],
]

const SCHEDULES: [RegExp, string][] = [
  [/sgm[\s_-]*uniform/i, 'SGM Uniform'],
  [/(?:^|[^a-z])trailing(?![a-z])/i, 'SGM Uniform'],
  [/(?:^|[^a-z])karras(?![a-z])/i, 'Karras'],
  [/(?:^|[^a-z])exponential(?![a-z])/i, 'Exponential'],
]

const NUM = '(\\d+(?:\\.\\d+)?)'
const RANGE = `${NUM}(?:\\s*(?:-|–|—|~|to)\\s*${NUM})?`

interface Parsed {
  steps?: [number, number]
  cfg?: [number, number]
  sampler?: string
  scheduleType?: string
}

function range(a: string | undefined, b: string | undefined): [number, number] | undefined {
  const x = Number(a)
  if (!Number.isFinite(x)) return undefined
  const y = b === undefined ? x : Number(b)
  return Number.isFinite(y) ? [Math.min(x, y), Math.max(x, y)] : [x, x]
}

/** Recommended settings stated in a description ("Steps: 4-6", "CFG 1.5", "Sampler: Euler a"). */
export function parseRecommendedSettings(description: string): Parsed {
  const text = stripHtml(description)
  const out: Parsed = {}
  const steps =
    new RegExp(`steps?\\s*(?:[:=]|count)?\\s*${RANGE}`, 'i').exec(text) ??
    new RegExp(`${RANGE}\\s*steps?(?![a-z])`, 'i').exec(text)
  const s = steps ? range(steps[1], steps[2]) : undefined
  if (s && s[0] >= 1 && s[1] <= 60 && Number.isInteger(s[0]) && Number.isInteger(s[1])) out.steps = s
  const cfg = new RegExp(
    `(?:cfg(?:\\s*scale)?|guidance(?:\\s*scale)?)\\s*(?:[:=]|of|at)?\\s*${RANGE}`,
    'i',
  ).exec(text)
  const c = cfg ? range(cfg[1], cfg[2]) : undefined
  if (c && c[0] >= 0 && c[1] <= 30) out.cfg = c
  // The sampler named after "sampler" first; else any sampler named near "steps"/"cfg".
  const samplerLine = /sampler[^\n:]*[:=]?\s*([^\n,;.]{0,60})/i.exec(text)
  for (const where of [samplerLine?.[1] ?? '', text]) {
    const hit = SAMPLER_NAMES.find(([re]) => re.test(where))
    if (hit && (where !== text || /sampler|steps|cfg/i.test(text))) {
      out.sampler = hit[1]
      break
    }
  }
  if (out.sampler && / karras$/i.test(out.sampler)) {
    out.scheduleType = 'Karras'
  } else {
    const sched = /(?:schedul\w*|schedule type)[^\n:]*[:=]?\s*([^\n,;]{0,40})/i.exec(text)
    const hit = SCHEDULES.find(([re]) => re.test(sched?.[1] ?? '')) ?? SCHEDULES.find(([re]) => re.test(text))
    if (hit) out.scheduleType = hit[1]
  }
  return out
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/** Settings shared by the sample images (median steps and CFG, most common sampler). */
export function settingsFromImages(metas: readonly Record<string, unknown>[]): Parsed {
  const steps: number[] = []
  const cfg: number[] = []
  const samplers = new Map<string, number>()
  for (const m of metas) {
    if (typeof m !== 'object' || m === null) continue
    const st = Number(m.steps)
    if (Number.isInteger(st) && st >= 1 && st <= 150) steps.push(st)
    const c = Number(m.cfgScale)
    if (Number.isFinite(c) && c >= 0 && c <= 30) cfg.push(c)
    if (typeof m.sampler === 'string' && m.sampler.trim())
      samplers.set(m.sampler.trim(), (samplers.get(m.sampler.trim()) ?? 0) + 1)
  }
  const out: Parsed = {}
  if (steps.length) out.steps = [Math.min(...steps), Math.max(...steps)]
  if (cfg.length) out.cfg = [Math.min(...cfg), Math.max(...cfg)]
  const top = [...samplers].sort((a, b) => b[1] - a[1])[0]
  if (top) {
    const named = SAMPLER_NAMES.find(([re]) => re.test(top[0]))
    out.sampler = named ? named[1] : top[0]
  }
  if (steps.length) out.steps = [median(steps), median(steps)].map(Math.round) as [number, number]
  if (cfg.length) out.cfg = [median(cfg), median(cfg)]
  return out
}

interface Defaults {
  steps: number
  stepsRange: [number, number]
  cfgScale: number
  cfgRange: [number, number]
  sampler: string
  scheduleType?: string
  fallbackSamplers: string[]
}

function defaultsFor(kind: FewStepKind, nameSteps: number | null, cfgVariant: boolean): Defaults {
  switch (kind) {
    case 'lcm':
      return {
        steps: 4,
        stepsRange: [4, 8],
        cfgScale: 1,
        cfgRange: [1, 2],
        sampler: 'LCM',
        fallbackSamplers: ['Euler a', 'Euler'],
      }
    case 'tcd':
      return {
        steps: nameSteps ?? 4,
        stepsRange: [2, 8],
        cfgScale: 1,
        cfgRange: [1, 1],
        sampler: 'TCD',
        fallbackSamplers: ['LCM', 'Euler a', 'Euler'],
      }
    case 'lightning':
      return {
        steps: nameSteps ?? 4,
        stepsRange: nameSteps ? [nameSteps, nameSteps] : [4, 8],
        cfgScale: 1,
        cfgRange: [1, 1],
        sampler: 'Euler',
        scheduleType: 'SGM Uniform',
        fallbackSamplers: ['Euler a'],
      }
    case 'hyper':
      if (nameSteps === 1)
        return {
          steps: 1,
          stepsRange: [1, 8],
          cfgScale: 1,
          cfgRange: [1, 1],
          sampler: 'TCD',
          fallbackSamplers: ['LCM', 'Euler a'],
        }
      return cfgVariant
        ? {
            steps: nameSteps ?? 8,
            stepsRange: [nameSteps ?? 8, nameSteps ?? 12],
            cfgScale: 6,
            cfgRange: [5, 8],
            sampler: 'DDIM',
            scheduleType: 'SGM Uniform',
            fallbackSamplers: ['Euler'],
          }
        : {
            steps: nameSteps ?? 8,
            stepsRange: nameSteps ? [nameSteps, nameSteps] : [4, 8],
            cfgScale: 1,
            cfgRange: [1, 1],
            sampler: 'DDIM',
            scheduleType: 'SGM Uniform',
            fallbackSamplers: ['Euler'],
          }
    case 'turbo':
      return {
        steps: nameSteps ?? 4,
        stepsRange: [1, 4],
        cfgScale: 1,
        cfgRange: [1, 1],
        sampler: 'Euler a',
        fallbackSamplers: ['Euler'],
      }
  }
}

/** Recognises a few-step model and returns its recommended settings; null for ordinary models. */
export function detectFewStep(f: FewStepFacts): FewStepPreset | null {
  const names = [f.fileName, f.name, f.civitaiModelName, f.civitaiVersionName].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  )
  let kind: FewStepKind | null = null
  let reason = ''
  if (f.baseModel) {
    kind = kindOf(f.baseModel)
    if (kind) reason = `Civitai base model "${f.baseModel}"`
  }
  for (const n of names) {
    if (kind) break
    kind = kindOf(n)
    if (kind) reason = `name "${n}"`
  }
  for (const t of f.tags ?? []) {
    if (kind) break
    kind = kindOf(t)
    if (kind) reason = `tag "${t}"`
  }
  for (const w of [...(f.trainedWords ?? []), ...(f.notes ? [f.notes] : [])]) {
    if (kind) break
    kind = kindOf(w)
    if (kind) reason = `"${w.slice(0, 40)}"`
  }
  if (!kind) return null

  const all = names.join(' ')
  const nameSteps = stepsInName(all)
  const cfgVariant = /(?:^|[^a-z])cfg(?![a-z])/i.test(all)
  const d = defaultsFor(kind, nameSteps, cfgVariant)
  const fromText = f.description ? parseRecommendedSettings(f.description) : {}
  const fromImages = f.imageMeta?.length ? settingsFromImages(f.imageMeta) : {}
  // Official single-purpose files (a step count in the name) keep the card's values; merges follow their author.
  const useText = nameSteps === null && (fromText.steps !== undefined || fromText.cfg !== undefined)
  const useImages = !useText && nameSteps === null && fromImages.steps !== undefined
  const pick: Parsed = useText ? fromText : useImages ? fromImages : {}
  const stepsRange = pick.steps ?? d.stepsRange
  const cfgRange = pick.cfg ?? d.cfgRange
  const steps = pick.steps ? pick.steps[0] : d.steps
  const cfgScale = pick.cfg ? pick.cfg[0] : d.cfgScale
  const sampler = (useText || useImages) && pick.sampler ? pick.sampler : d.sampler
  const scheduleType = (useText || useImages) && pick.scheduleType ? pick.scheduleType : d.scheduleType
  const family = /xl/i.test(`${f.baseModel ?? ''} ${all}`) || f.family === 'sdxl' ? 'SDXL' : 'SD'
  const stepLabel = nameSteps ? ` ${nameSteps}-step` : ''
  const loraLabel = f.type === 'lora' ? ' LoRA' : ''
  return {
    kind,
    label: `${kind === 'hyper' ? 'Hyper-SD' : `${family} ${KIND_LABEL[kind]}`}${stepLabel}${loraLabel}`,
    steps,
    cfgScale,
    sampler,
    ...(scheduleType ? { scheduleType } : {}),
    stepsRange,
    cfgRange,
    fallbackSamplers: [d.sampler, ...d.fallbackSamplers].filter((s) => s !== sampler),
    settingsFrom: useText ? 'description' : useImages ? 'sample images' : 'published defaults',
    reason,
  }
}

/** What a library record says about itself (checkpoints and LoRAs only; others are never few-step). */
export function fewStepOfRecord(r: {
  type: string
  family: string | null
  fileName: string
  name: string
  baseModel: string | null
  civitai: { modelName: string | null; versionName: string | null } | null
  trainedWords: readonly string[]
  description: string | null
  notes: string | null
}): FewStepPreset | null {
  if (r.type !== 'checkpoint' && r.type !== 'lora') return null
  return detectFewStep({
    type: r.type,
    family: r.family,
    fileName: r.fileName,
    name: r.name,
    baseModel: r.baseModel,
    civitaiModelName: r.civitai?.modelName ?? null,
    civitaiVersionName: r.civitai?.versionName ?? null,
    trainedWords: r.trainedWords,
    description: r.description,
    notes: r.notes,
  })
}
