import { familyLabel } from '../../../preload/family-label'
import type { Base, ModelType, ProbeResult, Variant } from './types'
import { ProbeError, RUNNABLE_BASES } from './types'

/** 'sd-1', 'sd-1-inpaint', 'sdxl-refiner', ...; a VAE of unknown base fits any ('any'). */
export function familyId(base: Base | null, variant: Variant, type?: ModelType): string {
  return (base ?? (type === 'vae' ? 'any' : 'unknown')) + (variant === 'normal' ? '' : `-${variant}`)
}

/** Why a probed model cannot run yet, or undefined when it can. */
export function notRunnableReason(
  p: Omit<ProbeResult, 'runnable' | 'reason' | 'family'>,
): string | undefined {
  const kind = p.type === 'checkpoint' ? 'checkpoints' : `${p.type === 'lora' ? 'LoRA' : p.type}s`
  if (p.format === 'onnx') return 'ONNX pipeline folders are recognised but not yet runnable'
  const runs = RUNNABLE_BASES.map((b) => familyLabel(b)).join(' and ')
  if (p.base && !RUNNABLE_BASES.includes(p.base)) {
    return `${familyLabel(p.base, p.variant)} ${kind} are recognised but not supported yet (Atelier runs ${runs})`
  }
  if (p.variant === 'depth' || p.variant === 'refiner') {
    return `${familyLabel(p.base, p.variant)} models are recognised but not supported yet (Atelier runs ${runs})`
  }
  if (p.type === 'checkpoint') {
    if (!p.unet) return 'the checkpoint has no UNet weights'
    if (!p.vae) return 'the checkpoint has no VAE weights (first_stage_model.*); pick a separate VAE'
    if (!p.textEncoders?.length) return 'the checkpoint has no text encoder weights'
    if (p.base === 'sdxl' && p.textEncoders.length < 2)
      return 'the SDXL checkpoint lacks one of its two text encoders'
  }
  return undefined
}

/** Throws a readable error unless the probed model can run now. */
export function assertRunnable(p: ProbeResult): void {
  if (!p.runnable) {
    throw new ProbeError(`${p.path}: ${p.reason ?? 'this model cannot run'}`, 'not-runnable')
  }
}

/** Throws a readable error when a LoRA cannot apply to a checkpoint ("this LoRA is for SDXL; the checkpoint is SD 1.x"). */
export function assertLoraCompatible(lora: ProbeResult, checkpoint: ProbeResult): void {
  if (lora.type !== 'lora' || !lora.lora)
    throw new ProbeError(`${lora.path} is not a LoRA (it is a ${lora.type})`, 'not-lora')
  if (checkpoint.type !== 'checkpoint') {
    throw new ProbeError(
      `${checkpoint.path} is not a checkpoint (it is a ${checkpoint.type})`,
      'not-checkpoint',
    )
  }
  const fail = (why: string): never => {
    throw new ProbeError(`${lora.path}: ${why}`, 'lora-incompatible')
  }
  const l = lora.lora
  const isRefiner = (v: Variant) => v === 'refiner'
  if (
    lora.base &&
    checkpoint.base &&
    (lora.base !== checkpoint.base || isRefiner(lora.variant) !== isRefiner(checkpoint.variant))
  ) {
    fail(
      `this LoRA is for ${familyLabel(lora.base, isRefiner(lora.variant) ? 'refiner' : 'normal')}; ` +
        `the checkpoint is ${familyLabel(checkpoint.base, isRefiner(checkpoint.variant) ? 'refiner' : 'normal')}`,
    )
  }
  const unetContext = checkpoint.unet?.contextDim
  if (l.contextDim !== undefined && unetContext !== undefined && l.contextDim !== unetContext) {
    fail(
      `this LoRA was trained for a ${l.contextDim}-wide text embedding; the checkpoint's UNet takes ${unetContext}`,
    )
  }
  const tes = checkpoint.textEncoders ?? []
  for (const [part, w] of Object.entries(l.textEncoderWidths)) {
    const i = part === 'te2' ? Math.min(1, tes.length - 1) : 0
    const have = tes[i]?.width
    if (have !== undefined && have !== w) {
      fail(
        `this LoRA targets a text encoder of width ${w}; the checkpoint's text encoder ${i + 1} has width ${have}`,
      )
    }
  }
}
