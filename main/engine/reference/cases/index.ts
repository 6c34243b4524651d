import { adapterCase } from './adapters'
import { img2imgCase } from './img2img'
import { inpaint9Case, inpaintLegacyCase } from './inpaint'
import * as ip from './ipadapter'
import { a1111SigmasCase, comfySigmasCase, kdiffRunCase } from './kdiff'
import { schedulersCase } from './schedulers'
import { sdxlTextEncodersCase } from './sdxl-text-encoders'
import { textEncoderCase } from './text-encoder'
import { tokenizerCase } from './tokenizer'
import { tiFilesCase, tiPromptsCase } from './textual-inversion'
import type { ReferenceCase, ReferenceManifest } from '../manifest'
import type { CaseRunner } from './types'
import { isUpscaleCase, upscaleCase } from './upscale'
import { unetCase } from './unet'
import { vaeDecodeCase, vaeEncodeCase } from './vae'

/**
 * Case kinds by case name; a key ending in `*` matches a prefix (e.g. `img2img_*`). Register new kinds
 * here, one line each.
 */
export const CASE_RUNNERS: Record<string, CaseRunner> = {
  tokenizer: tokenizerCase,
  text_encoder: textEncoderCase,
  text_encoders: sdxlTextEncodersCase,
  unet: unetCase,
  vae_encode: vaeEncodeCase,
  vae_decode: vaeDecodeCase,
  schedulers: schedulersCase,
  sigmas: a1111SigmasCase,
  comfy_sigmas: comfySigmasCase,
  'a1111_*': kdiffRunCase,
  'comfy_*': kdiffRunCase,
  'clip_preprocess*': ip.clipPreprocessCase,
  'image_encoder*': ip.imageEncoderCase,
  'image_proj*': ip.imageProjCase,
  'unet_ip*': ip.unetIpCase,
  'blend*': ip.blendCase,
  'txt2img_ip*': ip.txt2imgIpCase,
  'img2img_ip*': ip.img2imgIpCase,
  'img2img_*': img2imgCase,
  'inpaint_legacy_*': inpaintLegacyCase,
  'inpaint_9ch_*': inpaint9Case,
  'rrdb_*': upscaleCase,
  'srvgg_*': upscaleCase,
  'esrgan_*': upscaleCase,
  'realesrgan_*': upscaleCase,
  'upscale_*': upscaleCase,
  'adapter_*': adapterCase,
  ti_files: tiFilesCase,
  ti_prompts: tiPromptsCase,
  ti_chunk_quirk: tiPromptsCase,
}

export function runnerFor(
  caseName: string,
  def?: ReferenceCase,
  manifest?: ReferenceManifest,
): CaseRunner | undefined {
  const exact = CASE_RUNNERS[caseName]
  if (exact) return exact
  for (const [k, r] of Object.entries(CASE_RUNNERS))
    if (k.endsWith('*') && caseName.startsWith(k.slice(0, -1))) return r
  // Upscaler sets name their cases freely; their manifest says which architecture a case runs.
  if (def && manifest && isUpscaleCase(manifest, def)) return upscaleCase
  return undefined
}
