import { stat } from 'node:fs/promises'
import path from 'node:path'
import { readPickleHeader } from '../pickle'
import { readHeader } from '../safetensors'
import { civitaiBaseModelBeside } from './flavor'
import { probeFolder } from './folder'
import { probeHeader } from './single-file'
import type { ProbeResult } from './types'
import { ProbeError } from './types'

export * from './types'
export { familyLabel } from '../../../preload/family-label'
export { assertLoraCompatible, assertRunnable } from './compat'
export { KeyView } from './keys'
export { probeHeader } from './single-file'
export { probeFolder } from './folder'
export { FLAVOR_LABEL, SDXL_FLAVORS, flavorFromBaseModel } from './flavor'
export type { SdxlFlavor } from './flavor'

/**
 * Identify a model file or folder from headers and configs alone (no tensor data is read): format, type,
 * base family, variant, every architecture number the graph builders need, and whether it can run now.
 * Throws SafetensorsError (bad file), PickleRefusedError (pickle) or ProbeError (unrecognised).
 */
export async function probeModel(target: string): Promise<ProbeResult> {
  let st
  try {
    st = await stat(target)
  } catch {
    throw new ProbeError(`${target}: no such file or folder`, 'not-found')
  }
  if (st.isDirectory()) return probeFolder(target)
  // Pickles are read safely (or refused, naming the forbidden global) and probed like a safetensors header.
  const pickled = await readPickleHeader(target)
  if (!pickled && path.extname(target).toLowerCase() === '.onnx') {
    throw new ProbeError(
      `${target} is a single ONNX graph; probe the pipeline folder that holds unet/, text_encoder/ and vae_decoder/`,
      'onnx-graph',
    )
  }
  const header = pickled ?? (await readHeader(target))
  return probeHeader(target, header.tensors, header.metadata, await civitaiBaseModelBeside(target))
}
