import path from 'node:path'
import { detectPickle, TorchFile } from '../../model-formats/pickle'
import { readHeader, SafetensorsFile } from '../../model-formats/safetensors'
import type { ShapeOnly, UpscalerArch } from './arch'
import { detectArch, looksLikeUpscaler, stripPrefix, UpscalerFormatError } from './arch'

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

/** The architecture of an upscaler file from its header / pickle alone (no tensor data read); null if not one. */
export async function probeUpscaler(file: string): Promise<UpscalerArch | null> {
  const shapes = new Map<string, ShapeOnly>()
  if (await detectPickle(file)) {
    const t = await TorchFile.open(file)
    try {
      for (const [k, x] of t.stateDict()) shapes.set(k, { shape: [...x.shape] })
    } finally {
      await t.close()
    }
  } else {
    for (const [k, x] of (await readHeader(file)).tensors) shapes.set(k, { shape: x.shape })
  }
  const s = stripPrefix(shapes)
  if (!looksLikeUpscaler(s.keys())) return null
  return detectArch(s, file).arch
}

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
