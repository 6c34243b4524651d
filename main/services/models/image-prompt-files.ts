import path from 'node:path'
import type { RemoteFile } from '../../remote/types'

/**
 * Image-prompt models published as PyTorch pickles: IP-Adapter `.bin` files (h94/IP-Adapter
 * ip-adapter_sd15.bin) and image encoder `pytorch_model.bin`. They install like safetensors; the library
 * reads them with the safe unpickler (a pickle naming a forbidden global is refused there).
 */
export function isImagePromptPickle(f: RemoteFile): boolean {
  if (!/\.(bin|pt|pth)$/i.test(f.name)) return false
  if (/^(training data|config|archive)$/i.test(f.fileType)) return false
  const where = `${f.path ?? ''}/${f.name}`
  return /ip[-_]?adapter|image[-_]?encoder|clip[-_]?vision/i.test(where)
}

/**
 * The file name an install keeps. Hugging Face image encoders are generic names in a folder
 * (h94/IP-Adapter `models/image_encoder/model.safetensors`, `sdxl_models/image_encoder/model.safetensors`):
 * those become `<repo>-<folders>.<ext>` (`IP-Adapter-models-image_encoder.safetensors`) so two encoders
 * never collide and the library names them usefully. Every other file keeps its name.
 */
export function installFileName(f: RemoteFile, repo: string): string {
  // diffusers component files (madebyollin/taesd `diffusion_pytorch_model.safetensors`): `<repo>[-<folders>]`.
  const component = /^diffusion_pytorch_model\.(safetensors|bin)$/i.exec(f.name)
  if (component) {
    const folder = path.posix.dirname(f.path ?? '')
    const stem = [repo.split('/').pop() ?? 'model', ...(folder === '.' ? [] : folder.split('/'))].join('-')
    return `${stem.replace(/[^\w.-]+/g, '_')}.${component[1]}`
  }
  const generic = /^(model|pytorch_model)\.(safetensors|bin)$/i.exec(f.name)
  const dir = path.posix.dirname(f.path ?? '')
  if (!generic || dir === '.' || !/image[-_]?encoder|clip[-_]?vision/i.test(dir)) return f.name
  const base = `${repo.split('/').pop() ?? 'encoder'}-${dir.replace(/\//g, '-')}`.replace(/[^\w.-]+/g, '_')
  return `${base}.${generic[2]}`
}
