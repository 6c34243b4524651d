import path from 'node:path'

export type PickleKind = 'torch-zip' | 'pickle'

/**
 * A pickled file Atelier will not load: either its pickle names a global outside the state-dict allow-list
 * (`forbidden` says which; nothing was run), or it is a pickle that is not a PyTorch file at all.
 */
export class PickleRefusedError extends Error {
  readonly code = 'pickle'
  constructor(
    readonly file: string,
    readonly kind: PickleKind,
    /** The global (module.name) that made the reader refuse, when that is the reason. */
    readonly forbidden?: string,
  ) {
    const what = kind === 'torch-zip' ? 'a PyTorch zip archive with a pickled data.pkl' : 'a Python pickle'
    super(
      forbidden
        ? `${path.basename(file)} was refused: its pickle calls the forbidden global "${forbidden}". ` +
            'Only the globals a PyTorch state dict needs are allowed, and nothing in the file was run. ' +
            `Get the .safetensors version of this model (or a plain state-dict file) instead. (${file})`
        : `${path.basename(file)} is ${what} (.ckpt/.pt/.pth/.bin) that is not a PyTorch state dict. ` +
            'Loading a pickle can run arbitrary code, so Atelier refuses these files. Download the .safetensors ' +
            `version of this model instead (most models on Civitai and Hugging Face offer one). (${file})`,
    )
    this.name = 'PickleRefusedError'
  }
}
