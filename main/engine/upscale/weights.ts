import path from 'node:path'
import { detectPickle, TorchFile } from '../../model-formats/pickle'
import { SafetensorsFile } from '../../model-formats/safetensors'
import type { UpscalerArch } from '../../model-formats/probe/upscaler'
import {
  detectArch,
  looksLikeUpscaler,
  stripPrefix,
  UpscalerFormatError,
} from '../../model-formats/probe/upscaler'

export { probeUpscaler } from '../../model-formats/probe/upscaler'

/**
 * Upscaler weights from a .safetensors or a PyTorch .pth/.pt/.ckpt file (read with the safe pickle reader),
 * in canonical names, as float32. Real-ESRGAN releases wrap the state dict in `params_ema` (preferred, as
 * RealESRGANer does) or `params`.
 */

export interface LoadedTensor {
  shape: number[]
  data: Float32Array
}

export interface UpscalerWeights {
  file: string
  arch: UpscalerArch
  /** Canonical name -> float32 tensor. */
  tensors: Map<string, LoadedTensor>
}

const FLOAT = new Set(['F32', 'F16', 'BF16', 'F64'])

export async function loadUpscalerWeights(file: string): Promise<UpscalerWeights> {
  const raw = new Map<string, { shape: number[]; read: () => Promise<Float32Array> }>()
  let close: () => Promise<void>
  if (await detectPickle(file)) {
    const t = await TorchFile.open(file)
    close = () => t.close()
    for (const [k, x] of t.stateDict())
      if (FLOAT.has(x.dtype)) raw.set(k, { shape: [...x.shape], read: () => t.readFloat32(x) })
  } else {
    const st = await SafetensorsFile.open(file)
    close = () => st.close()
    for (const [k, x] of st.tensors)
      if (FLOAT.has(x.dtype)) raw.set(k, { shape: x.shape, read: () => st.readFloat32(k) })
  }
  try {
    const stripped = stripPrefix(raw)
    if (!looksLikeUpscaler(stripped.keys()))
      throw new UpscalerFormatError(
        `${path.basename(file)}: not an upscaler (no RRDBNet / SRVGGNetCompact weights) (${file})`,
        'not-upscaler',
      )
    const { arch, canonical } = detectArch(stripped, file)
    const tensors = new Map<string, LoadedTensor>()
    for (const [from, to] of canonical) {
      const t = stripped.get(from)
      if (!t) continue
      tensors.set(to, { shape: t.shape, data: await t.read() })
    }
    return { file, arch, tensors }
  } finally {
    await close()
  }
}
