import path from 'node:path'
import { familyLabel } from '../../../preload/family-label'
import { familyId, notRunnableReason } from './compat'
import { FLAVOR_LABEL, flavorFromBaseModel, flavorFromHints } from './flavor'
import { probeEmbedding } from './embedding'
import type { KeyEntry } from './keys'
import { KeyView } from './keys'
import { probeLora } from './lora'
import { hfClipArch, hfClipPrefix, openClipArch } from './text-encoder'
import type { Base, ProbeResult, TextEncoderArch, Variant } from './types'
import { ProbeError } from './types'
import { unetFromLdm, withAdditionTimeDim, withHeads } from './unet'
import { DEFAULT_SCALING, looksLikeVae, vaeArch, vaeBase } from './vae'

export type ProbeDraft = Omit<ProbeResult, 'runnable' | 'reason' | 'family'>

/** Adds family and runnable/reason, with the identifying fields first (the CLI prints this order). */
export function finalize(draft: ProbeDraft, civitaiBaseModel?: string): ProbeResult {
  const reason = notRunnableReason(draft)
  const { path: p, format, type, base, variant, ...rest } = draft
  const flavor =
    base === 'sdxl' ? (flavorFromBaseModel(civitaiBaseModel) ?? flavorFromHints(draft.hints)) : undefined
  return {
    path: p,
    format,
    type,
    base,
    variant,
    family: familyId(base, variant, type),
    ...(flavor ? { flavor, label: `${familyLabel(base, variant)} (${FLAVOR_LABEL[flavor]})` } : {}),
    runnable: reason === undefined,
    ...(reason ? { reason } : {}),
    ...rest,
  }
}

const HINT_KEYS = [
  'ss_base_model_version',
  'ss_v2',
  'ss_network_module',
  'ss_network_dim',
  'ss_network_alpha',
  'ss_sd_model_name',
  'modelspec.architecture',
  'modelspec.title',
  'modelspec.prediction_type',
]

export function pickHints(meta: Record<string, string>): Record<string, string> | undefined {
  const hints = Object.fromEntries(HINT_KEYS.flatMap((k) => (meta[k] !== undefined ? [[k, meta[k]]] : [])))
  return Object.keys(hints).length ? hints : undefined
}

export function variantFromInChannels(inChannels: number, file: string): Variant {
  if (inChannels === 4) return 'normal'
  if (inChannels === 9) return 'inpaint'
  if (inChannels === 5) return 'depth'
  throw new ProbeError(
    `${file}: the UNet takes ${inChannels} input channels; Atelier knows 4 (normal), 9 (inpainting) and 5 (depth)`,
    'unsupported-architecture',
  )
}

interface Input {
  file: string
  v: KeyView
  meta: Record<string, string>
  /** Civitai's baseModel from a sidecar (the only way to tell an SD 1 VAE from an SDXL one by data). */
  civitaiBaseModel?: string
}

type Matcher = (h: Input) => ProbeDraft | undefined

function common(h: Input) {
  const hints = pickHints(h.meta)
  const pt = h.meta['modelspec.prediction_type']
  const predictionType: ProbeResult['predictionType'] =
    pt === 'v' ? 'v_prediction' : pt === 'epsilon' ? 'epsilon' : undefined
  const dtype = h.v.dominantDtype()
  return {
    path: h.file,
    format: 'ldm-single-file' as const,
    files: { model: h.file },
    ...(dtype ? { dtype } : {}),
    ...(hints ? { hints } : {}),
    ...(predictionType ? { predictionType } : {}),
  }
}

/** Original LDM / SGM single-file checkpoint: `model.diffusion_model.*` (+ VAE and text encoders). */
const ldmCheckpoint: Matcher = (h) => {
  const root = h.v.under('model.diffusion_model.')
  if (!root.has('input_blocks.0.0.weight')) return undefined
  const shape = unetFromLdm(root)
  const sdxlTe1 = hfClipArch(h.v.under('conditioner.embedders.0.transformer.'), 'quick_gelu')
  const sdxlTe2 = openClipArch(h.v.under('conditioner.embedders.1.model.'))
  const refinerTe = openClipArch(h.v.under('conditioner.embedders.0.model.'))
  const sd1Te = hfClipArch(h.v.under('cond_stage_model.transformer.'), 'quick_gelu')
  const sd2Te = openClipArch(h.v.under('cond_stage_model.model.'))
  const ctx = shape.contextDim

  let base: Base
  let variant = variantFromInChannels(shape.inChannels, h.file)
  let textEncoders: TextEncoderArch[] = []
  if (refinerTe && !sdxlTe1) {
    ;[base, variant, textEncoders] = ['sdxl', 'refiner', [refinerTe]]
  } else if (sdxlTe1 || sdxlTe2 || shape.additionEmbedInDim !== undefined) {
    base = 'sdxl'
    textEncoders = [sdxlTe1, sdxlTe2].filter((t) => t !== undefined)
    if (!sdxlTe1 && !sdxlTe2 && ctx === 1280) variant = 'refiner'
  } else if (sd2Te) {
    ;[base, textEncoders] = ['sd-2', [sd2Te]]
  } else if (sd1Te) {
    ;[base, textEncoders] = [ctx === 1024 ? 'sd-2' : 'sd-1', [sd1Te]]
  } else {
    base = ctx === 768 ? 'sd-1' : ctx === 1024 || shape.linearProjection ? 'sd-2' : 'sd-1'
  }
  const pooled = textEncoders[textEncoders.length - 1]?.projectionDim
  const unet = withAdditionTimeDim(withHeads(shape, base), pooled, variant === 'refiner')
  const vaeView = h.v.under('first_stage_model.')
  return {
    ...common(h),
    type: 'checkpoint',
    base,
    variant,
    unet,
    ...(looksLikeVae(vaeView) ? { vae: vaeArch(vaeView, DEFAULT_SCALING[base]) } : {}),
    textEncoders,
  }
}

const lora: Matcher = (h) => {
  const found = probeLora(h.v, h.meta)
  if (!found) return undefined
  return { ...common(h), type: 'lora', base: found.base, variant: found.variant, lora: found.info }
}

const embedding: Matcher = (h) => {
  const found = probeEmbedding(h.v)
  if (!found) return undefined
  return { ...common(h), type: 'embedding', base: found.base, variant: 'normal', embedding: found.info }
}

/** A VAE on its own, LDM or diffusers naming, with or without the `first_stage_model.` prefix. */
const vae: Matcher = (h) => {
  const view = [h.v, h.v.under('first_stage_model.'), h.v.under('vae.')].find(looksLikeVae)
  if (!view) return undefined
  const arch = vaeArch(view, DEFAULT_SCALING['sd-1'])
  const base = vaeBase({
    file: h.file,
    latentChannels: arch.latentChannels,
    meta: h.meta,
    ...(h.civitaiBaseModel ? { civitaiBaseModel: h.civitaiBaseModel } : {}),
  })
  return {
    ...common(h),
    type: 'vae',
    base,
    variant: 'normal',
    vae: base === 'sdxl' ? { ...arch, scalingFactor: DEFAULT_SCALING.sdxl } : arch,
  }
}

/** One component of a diffusers folder, probed on its own: point at the folder instead. */
const diffusersComponent: Matcher = (h) => {
  const what =
    h.v.has('conv_in.weight') && h.v.hasAny('down_blocks.')
      ? 'UNet'
      : hfClipPrefix(h.v) !== undefined
        ? 'text encoder'
        : undefined
  if (!what) return undefined
  const folder = path.dirname(path.dirname(h.file))
  throw new ProbeError(
    `${h.file} is the ${what} of a diffusers folder, not a whole model; probe the folder (${folder}) instead`,
    'diffusers-component',
  )
}

/** Ordered: the first matcher that recognises the keys wins. */
const MATCHERS: Matcher[] = [ldmCheckpoint, lora, embedding, vae, diffusersComponent]

/** Probe a single safetensors file from its header alone. */
export function probeHeader(
  file: string,
  tensors: ReadonlyMap<string, KeyEntry>,
  metadata: Record<string, string> = {},
  /** Civitai's baseModel for this file (from a sidecar), for the SDXL flavor label. */
  civitaiBaseModel?: string,
): ProbeResult {
  const input: Input = {
    file,
    v: KeyView.of(tensors),
    meta: metadata,
    ...(civitaiBaseModel ? { civitaiBaseModel } : {}),
  }
  for (const m of MATCHERS) {
    const draft = withFileName(file, () => m(input))
    if (draft) return finalize(draft, civitaiBaseModel)
  }
  const sample = [...tensors.keys()].slice(0, 3).join(', ')
  throw new ProbeError(
    `${file}: not a Stable Diffusion checkpoint, LoRA, VAE or embedding that Atelier recognises ` +
      `(${tensors.size} tensors${sample ? `, e.g. ${sample}` : ''})`,
    'unknown-model',
  )
}

/** Run `fn`, making sure a ProbeError it throws names the file. */
export function withFileName<T>(file: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof ProbeError && !err.message.includes(file))
      throw new ProbeError(`${file}: ${err.message}`, err.code)
    throw err
  }
}
