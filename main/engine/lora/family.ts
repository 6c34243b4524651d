import fs from 'node:fs'
import path from 'node:path'
import type { ConvertedModel } from '../convert/convert'
import { familyLabel, probeModel } from '../../model-formats/probe'
import type { Base } from '../../model-formats/probe'
import { LoraError } from '../../model-formats/lora/lora-file'

/**
 * The family check that runs before any LoRA work: a LoRA made for SD 1.x on an SDXL checkpoint (or the
 * reverse) is refused by reading headers only (the probe's rules: text-encoder parts, context width,
 * kohya / modelspec metadata), with the family of each named.
 */

/** The base family of a converted model: its manifest's, else whether it has a second text encoder. */
export function convertedFamily(model: ConvertedModel): Base {
  if (model.manifest.family) return model.manifest.family
  return fs.existsSync(model.paths.text_encoder_2) ? 'sdxl' : 'sd-1'
}

export async function assertLoraFamily(loraPath: string, family: Base): Promise<void> {
  let base: Base | null
  try {
    const p = await probeModel(loraPath)
    if (p.type !== 'lora') return // readLora reports non-LoRA files with its own message
    base = p.base
  } catch {
    return // unreadable or unknown: readLora gives the specific error
  }
  if (base && base !== family)
    throw new LoraError(
      `${path.basename(loraPath)}: this LoRA is for ${familyLabel(base)}; the checkpoint is ${familyLabel(family)}`,
      'lora-family',
    )
}
