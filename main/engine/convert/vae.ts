import fs from 'node:fs'
import path from 'node:path'
import type { WeightSource } from '../graphs/weights'
import { sourcesFromFile } from '../graphs/weights'
import { readPickleHeader } from '../../model-formats/pickle'
import { readHeader } from '../../model-formats/safetensors'
import type { TensorInfo } from '../../model-formats/safetensors'
import type { ConvertedModel, ConvertOptions } from './convert'
import { ConversionCancelled, convertPlans, vaePlans } from './convert'
import { LDM_VAE_PREFIX, ldmVaeUpBlocks, vaeKey } from './keys'
import { SourceError } from './source'

/**
 * A standalone VAE (A1111 `models/VAE/*.safetensors|.pt|.ckpt`, e.g. vae-ft-mse-840000-ema-pruned, or a
 * diffusers `vae/` folder / its diffusion_pytorch_model.safetensors) as canonical VAE weight sources, and its
 * conversion into a cache entry holding only `vae_encoder` and `vae_decoder`, keyed by the file's SHA-256
 * like a checkpoint. A generation swaps these two graphs in (ModelSet.useVae); the UNet and text encoder
 * sessions stay as they are.
 */

export interface VaeSource {
  path: string
  files: string[]
  vae: Map<string, WeightSource>
  /** Tensors that mapped to nothing (A1111's `loss.*`, EMA bookkeeping, ...). */
  ignored: number
}

/** Prefixes a VAE's own keys may sit under: none (A1111 VAE files), a checkpoint's, a diffusers pipeline's. */
const PREFIXES = ['', LDM_VAE_PREFIX, 'vae.']

const WEIGHT_NAMES = ['diffusion_pytorch_model.safetensors', 'model.safetensors']

/** The weight file of a VAE path: the file itself, or the safetensors inside a diffusers `vae/` folder. */
function weightFile(abs: string): string {
  if (!fs.statSync(abs).isDirectory()) return abs
  for (const dir of [abs, path.join(abs, 'vae')]) {
    const hit = WEIGHT_NAMES.map((n) => path.join(dir, n)).find((f) => fs.existsSync(f))
    if (hit) return hit
  }
  throw new SourceError(
    `${abs}: not a VAE folder (no ${WEIGHT_NAMES.join(' or ')}, also not under vae/)`,
    'not-a-model',
  )
}

export async function openVaeSource(p: string): Promise<VaeSource> {
  let abs = path.resolve(p)
  try {
    abs = fs.realpathSync(abs)
  } catch {
    throw new SourceError(`${abs}: no such file or folder`, 'not-found')
  }
  const file = weightFile(abs)
  const header = (await readPickleHeader(file, { requireRanges: true })) ?? (await readHeader(file))
  const keys = [...header.tensors.keys()]
  const prefix = PREFIXES.find(
    (x) =>
      header.tensors.has(`${x}encoder.conv_in.weight`) && header.tensors.has(`${x}decoder.conv_in.weight`),
  )
  if (prefix === undefined)
    throw new SourceError(
      `${path.basename(file)}: not a VAE (no encoder.conv_in / decoder.conv_in weights${keys.some((k) => k.startsWith('model.diffusion_model.')) ? '; it is a whole checkpoint' : ''}) (${file})`,
      'not-a-vae',
    )
  const own = keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length))
  const up = ldmVaeUpBlocks(own)
  const entries = [...header.tensors.entries()] as [string, TensorInfo][]
  const vae = sourcesFromFile(file, entries, (k) =>
    k.startsWith(prefix) ? vaeKey(k.slice(prefix.length), header.tensors.get(k)?.shape ?? [], up) : undefined,
  )
  return { path: abs, files: [file], vae, ignored: keys.length - vae.size }
}

/** Converts (or finds in the cache) a standalone VAE: `paths.vae_encoder` and `paths.vae_decoder` exist. */
export async function convertVae(p: string, opts: ConvertOptions = {}): Promise<ConvertedModel> {
  const src = await openVaeSource(p)
  if (opts.signal?.aborted) throw new ConversionCancelled()
  return convertPlans(src, 'vae', vaePlans(src.vae), opts)
}
