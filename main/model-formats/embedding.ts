import path from 'node:path'
import { detectPickle } from './pickle'
import { PyDict } from './pickle/unpickler'
import { TorchFile, TorchTensor } from './pickle/torch'
import { SafetensorsFile } from './safetensors'

/**
 * Textual-inversion embedding files, read as A1111 reads them (`textual_inversion.py::create_embedding_from_data`):
 *
 * - A1111 `.pt` (torch.save of `{'string_to_param': {'*': tensor [n, W]}, 'name', 'step', ...}`), read with the
 *   safe unpickler (the storage location, often `cuda:0`, is ignored);
 * - kohya `.safetensors`: one tensor `emb_params` [n, W] (any single tensor is accepted, as upstream does);
 * - diffusers `learned_embeds.bin`: `{'<token>': tensor [W]}`, one vector (the token string is not used);
 * - SDXL: `clip_l` [n, 768] + `clip_g` [n, 1280] (safetensors or a pickle).
 *
 * The name used in prompts is the file name without its extension. Vectors become float32.
 */

export type EmbeddingFormat = 'a1111-pt' | 'safetensors' | 'diffusers-bin' | 'sdxl'

export interface EmbeddingVectors {
  /** [vectors, width] row-major. */
  data: Float32Array
  vectors: number
  width: number
}

export interface EmbeddingFile {
  /** File name without extension: the word that triggers it in prompts. */
  name: string
  file: string
  format: EmbeddingFormat
  /** Vector count (prompt positions it takes). */
  vectors: number
  /** Width A1111 compares with the text encoder's: W, or clip_l + clip_g for SDXL. */
  width: number
  /** SD 1.x/2.x: the vectors. */
  vec?: EmbeddingVectors
  /** SDXL: per text encoder. */
  sdxl?: { clip_l: EmbeddingVectors; clip_g: EmbeddingVectors }
  /** `step` / `sd_checkpoint_name` of A1111 .pt files, when present. */
  info?: { step?: number; checkpointName?: string }
}

export const EMBEDDING_EXTENSIONS = ['.pt', '.bin', '.safetensors'] as const

export class EmbeddingFormatError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${path.basename(file)}: ${message}`)
    this.name = 'EmbeddingFormatError'
  }
}

function vectorsOf(
  file: string,
  data: Float32Array,
  shape: readonly number[],
  what: string,
): EmbeddingVectors {
  if (shape.length === 1) return { data, vectors: 1, width: shape[0] as number }
  if (shape.length === 2) return { data, vectors: shape[0] as number, width: shape[1] as number }
  throw new EmbeddingFormatError(file, `${what} has shape [${shape.join(', ')}]; expected [vectors, width]`)
}

function sdxlOf(file: string, l: EmbeddingVectors, g: EmbeddingVectors): EmbeddingFile {
  if (l.vectors !== g.vectors)
    throw new EmbeddingFormatError(file, `clip_l has ${l.vectors} vectors but clip_g has ${g.vectors}`)
  return {
    name: '',
    file,
    format: 'sdxl',
    vectors: g.vectors,
    width: l.width + g.width,
    sdxl: { clip_l: l, clip_g: g },
  }
}

async function readSafetensorsEmbedding(file: string): Promise<EmbeddingFile> {
  const st = await SafetensorsFile.open(file)
  try {
    const read = async (k: string) => vectorsOf(file, await st.readFloat32(k), st.info(k).shape, `"${k}"`)
    if (st.has('clip_g') && st.has('clip_l')) return sdxlOf(file, await read('clip_l'), await read('clip_g'))
    const keys = st.keys()
    if (keys.length !== 1)
      throw new EmbeddingFormatError(
        file,
        `holds ${keys.length} tensors (${keys.slice(0, 4).join(', ')}); an embedding has one (emb_params) or ` +
          'clip_l + clip_g',
      )
    const vec = await read(keys[0] as string)
    return { name: '', file, format: 'safetensors', vectors: vec.vectors, width: vec.width, vec }
  } finally {
    await st.close()
  }
}

async function readPickleEmbedding(file: string): Promise<EmbeddingFile> {
  const t = await TorchFile.open(file)
  try {
    const root = t.root
    if (!(root instanceof PyDict))
      throw new EmbeddingFormatError(file, 'is a PyTorch file but not a dictionary: not an embedding')
    const read = async (x: TorchTensor, what: string) =>
      vectorsOf(file, await t.readFloat32(x), x.shape, what)
    const params = root.get('string_to_param')
    if (params !== undefined) {
      const dict = params instanceof PyDict ? params : undefined
      const tensors = dict ? [...dict.entries()].filter(([, v]) => v instanceof TorchTensor) : []
      if (!dict || tensors.length !== 1)
        throw new EmbeddingFormatError(file, 'string_to_param must hold exactly one tensor')
      const vec = await read(tensors[0]?.[1] as TorchTensor, 'string_to_param')
      const step = root.get('step')
      const ckpt = root.get('sd_checkpoint_name')
      return {
        name: '',
        file,
        format: 'a1111-pt',
        vectors: vec.vectors,
        width: vec.width,
        vec,
        info: {
          ...(typeof step === 'number' ? { step } : {}),
          ...(typeof ckpt === 'string' ? { checkpointName: ckpt } : {}),
        },
      }
    }
    const l = root.get('clip_l')
    const g = root.get('clip_g')
    if (l instanceof TorchTensor && g instanceof TorchTensor)
      return sdxlOf(file, await read(l, 'clip_l'), await read(g, 'clip_g'))
    const entries = [...root.entries()]
    if (entries.length !== 1 || !(entries[0]?.[1] instanceof TorchTensor))
      throw new EmbeddingFormatError(
        file,
        'is neither an A1111 embedding (string_to_param) nor a diffusers concept (one token -> one tensor)',
      )
    const vec = await read(entries[0][1], `"${String(entries[0][0])}"`)
    return { name: '', file, format: 'diffusers-bin', vectors: vec.vectors, width: vec.width, vec }
  } finally {
    await t.close()
  }
}

/** The embedding name of a file: its base name without the extension (A1111's rule). */
export function embeddingName(file: string): string {
  const base = path.basename(file)
  const ext = path.extname(base)
  return ext ? base.slice(0, -ext.length) : base
}

/** Reads a textual-inversion embedding file (by content: safetensors, or a PyTorch pickle through the safe reader). */
export async function readEmbedding(file: string): Promise<EmbeddingFile> {
  const kind = await detectPickle(file)
  const e = kind ? await readPickleEmbedding(file) : await readSafetensorsEmbedding(file)
  if (e.vectors < 1) throw new EmbeddingFormatError(file, 'has no vectors')
  return { ...e, name: embeddingName(file) }
}
