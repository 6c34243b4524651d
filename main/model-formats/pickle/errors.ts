import path from 'node:path'

export type PickleKind = 'torch-zip' | 'pickle'

/**
 * A pickled file Atelier will not load: its pickle names a global outside the state-dict allow-list
 * (`forbidden` says which; nothing was run), it is a pickle that is not a PyTorch file, or (`readable`)
 * it is a safe PyTorch state dict used where only .safetensors is accepted.
 */
export class PickleRefusedError extends Error {
  readonly code = 'pickle'
  constructor(
    readonly file: string,
    readonly kind: PickleKind,
    /** The global (module.name) that made the reader refuse, when that is the reason. */
    readonly forbidden?: string,
    /** The file is a PyTorch state dict the safe reader can read; the caller needs safetensors. */
    readonly readable = false,
  ) {
    const name = path.basename(file)
    const what = kind === 'torch-zip' ? 'a PyTorch zip archive with a pickled data.pkl' : 'a Python pickle'
    super(
      forbidden
        ? `${name} was refused: its pickle calls the forbidden global "${forbidden}". ` +
            'Only the globals a PyTorch state dict needs are allowed, and nothing in the file was run. ' +
            `Get the .safetensors version of this model (or a plain state-dict file) instead. (${file})`
        : readable
          ? `${name} is a PyTorch pickle (.ckpt/.pt/.pth/.bin); Atelier reads it safely, but this model type ` +
            'is only used from .safetensors files so far. Download the .safetensors version of this model ' +
            `(most models on Civitai and Hugging Face offer one). (${file})`
          : `${name} is ${what} (.ckpt/.pt/.pth/.bin) that is not a PyTorch state dict. ` +
            'Loading a pickle can run arbitrary code, so Atelier refuses these files. Download the .safetensors ' +
            `version of this model instead (most models on Civitai and Hugging Face offer one). (${file})`,
    )
    this.name = 'PickleRefusedError'
  }
}
