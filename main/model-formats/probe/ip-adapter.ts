import path from 'node:path'
import type { TensorFile } from '../tensor-file'
import { openTensorFile } from '../tensor-file'

/**
 * IP-Adapter weights (tencent-ailab/IP-Adapter `ip-adapter_sd15.bin` layout, also as .safetensors):
 *
 * - `image_proj.proj.weight` [T*D, E], `image_proj.proj.bias` [T*D], `image_proj.norm.weight/bias` [D]: the
 *   ImageProjModel mapping one CLIP image embedding (width E) to T context tokens of width D;
 * - `ip_adapter.N.to_k_ip.weight`, `ip_adapter.N.to_v_ip.weight` [hidden, D] (no bias) for every
 *   cross-attention processor N (see engine/ipadapter/layers.ts for the numbering).
 *
 * Other adapter kinds are recognised and refused with their name: Plus / Plus-Face (a Resampler over
 * the encoder's hidden states), Full-Face (MLP projection) and FaceID (InsightFace embeddings).
 */

export class IpAdapterError extends Error {
  constructor(
    message: string,
    readonly code: 'not-ip-adapter' | 'unsupported' | 'mismatch' | 'damaged',
  ) {
    super(message)
    this.name = 'IpAdapterError'
  }
}

export type IpAdapterFamily = 'sd-1' | 'sd-2' | 'sdxl' | null

export interface IpAdapterInfo {
  file: string
  /** Image tokens per image (clip_extra_context_tokens). */
  tokens: number
  /** Token width = the UNet's cross-attention width (SD 1.x 768, SD 2.x 1024, SDXL 2048). */
  crossAttentionDim: number
  /** Width of the CLIP image embedding it takes (ViT-H/14 1024, ViT-bigG/14 1280). */
  clipEmbeddingsDim: number
  /** N and inner width of every decoupled cross-attention, in processor order. */
  layers: { n: number; hidden: number }[]
  /** Base family by the token width. */
  family: IpAdapterFamily
  /** Storage dtype of the projection weight. */
  dtype: string
}

export const PROJ_W = 'image_proj.proj.weight'
export const PROJ_B = 'image_proj.proj.bias'
export const NORM_W = 'image_proj.norm.weight'
export const NORM_B = 'image_proj.norm.bias'
const KV = /^ip_adapter\.(\d+)\.to_(k|v)_ip\.weight$/

export function kvName(n: number, which: 'k' | 'v'): string {
  return `ip_adapter.${n}.to_${which}_ip.weight`
}

/** The family whose UNet has this cross-attention width. */
export function familyForContextDim(d: number): IpAdapterFamily {
  return d === 768 ? 'sd-1' : d === 1024 ? 'sd-2' : d === 2048 ? 'sdxl' : null
}

/** True when the names look like an IP-Adapter of any kind (for probing). */
export function looksLikeIpAdapter(keys: Iterable<string>): boolean {
  let proj = false
  let kv = false
  for (const k of keys) {
    if (k.startsWith('image_proj.')) proj = true
    if (/^ip_adapter\.\d+\.to_[kv]_ip\./.test(k)) kv = true
    if (proj && kv) return true
  }
  return false
}

function unsupportedKind(keys: Set<string>): string | undefined {
  if (keys.has('image_proj.latents') || [...keys].some((k) => k.startsWith('image_proj.layers.')))
    return 'an IP-Adapter Plus / Plus-Face (Resampler over the image encoder hidden states)'
  if (keys.has('image_proj.proj.0.weight')) return 'an IP-Adapter Full-Face or FaceID model (MLP projection)'
  if ([...keys].some((k) => k.startsWith('image_proj.perceiver_resampler.')))
    return 'an IP-Adapter FaceID Plus model'
  return undefined
}

/** Reads the adapter's layout from names and shapes only. */
export function describeIpAdapter(file: string, shapes: Map<string, number[]>): IpAdapterInfo {
  const name = path.basename(file)
  const keys = new Set(shapes.keys())
  if (!looksLikeIpAdapter(keys))
    throw new IpAdapterError(
      `${name} is not an IP-Adapter (no image_proj.* and ip_adapter.N.to_k_ip weights) (${file})`,
      'not-ip-adapter',
    )
  const other = unsupportedKind(keys)
  if (other)
    throw new IpAdapterError(
      `${name} is ${other}; Atelier runs the standard IP-Adapter (ImageProjModel: image_proj.proj + norm) so far (${file})`,
      'unsupported',
    )
  for (const k of [PROJ_W, PROJ_B, NORM_W, NORM_B])
    if (!keys.has(k)) throw new IpAdapterError(`${name}: "${k}" is missing (${file})`, 'damaged')
  const [rows = 0, E = 0] = shapes.get(PROJ_W) as number[]
  const [D = 0] = shapes.get(NORM_W) as number[]
  if (D <= 0 || rows % D !== 0)
    throw new IpAdapterError(
      `${name}: image_proj.proj has ${rows} outputs, not a whole number of ${D}-wide tokens (${file})`,
      'damaged',
    )
  if ((shapes.get(PROJ_B)?.[0] ?? -1) !== rows || (shapes.get(NORM_B)?.[0] ?? -1) !== D)
    throw new IpAdapterError(`${name}: image_proj bias shapes do not match its weights (${file})`, 'damaged')
  const byN = new Map<number, { k?: number[]; v?: number[] }>()
  for (const [k, shape] of shapes) {
    const m = KV.exec(k)
    if (!m) continue
    const n = Number(m[1])
    const e = byN.get(n) ?? {}
    e[m[2] as 'k' | 'v'] = shape
    byN.set(n, e)
  }
  const layers: { n: number; hidden: number }[] = []
  for (const [n, e] of [...byN].sort((a, b) => a[0] - b[0])) {
    if (!e.k || !e.v)
      throw new IpAdapterError(`${name}: layer ${n} has to_${e.k ? 'k' : 'v'}_ip only (${file})`, 'damaged')
    const [hk = 0, dk = 0] = e.k
    const [hv = 0, dv = 0] = e.v
    if (e.k.length !== 2 || e.v.length !== 2 || hk !== hv || dk !== D || dv !== D)
      throw new IpAdapterError(
        `${name}: ip_adapter.${n} has shapes [${e.k}] / [${e.v}]; expected [hidden, ${D}] for both (${file})`,
        'damaged',
      )
    layers.push({ n, hidden: hk })
  }
  return {
    file,
    tokens: rows / D,
    crossAttentionDim: D,
    clipEmbeddingsDim: E,
    layers,
    family: familyForContextDim(D),
    dtype: '',
  }
}

export async function describeOpen(f: TensorFile): Promise<IpAdapterInfo> {
  const shapes = new Map(f.keys().map((k) => [k, f.info(k).shape]))
  const info = describeIpAdapter(f.file, shapes)
  return { ...info, dtype: f.info(PROJ_W).dtype }
}

/** The layout of an adapter file (.safetensors or a pickled .bin), reading no tensor data. */
export async function probeIpAdapter(file: string): Promise<IpAdapterInfo> {
  const f = await openTensorFile(file)
  try {
    return await describeOpen(f)
  } finally {
    await f.close()
  }
}
