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
