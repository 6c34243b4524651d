import path from 'node:path'
import type { IpAdapterInfo } from '../../model-formats/probe/ip-adapter'
import {
  describeOpen,
  familyForContextDim,
  IpAdapterError,
  kvName,
  NORM_B,
  NORM_W,
  PROJ_B,
  PROJ_W,
} from '../../model-formats/probe/ip-adapter'
import { openTensorFile } from '../../model-formats/tensor-file'
import type { CrossAttentionLayer } from './layers'

export type { IpAdapterFamily, IpAdapterInfo } from '../../model-formats/probe/ip-adapter'
export {
  describeIpAdapter,
  familyForContextDim,
  IpAdapterError,
  kvName,
  looksLikeIpAdapter,
  probeIpAdapter,
} from '../../model-formats/probe/ip-adapter'

/** IP-Adapter weights read for the graphs (the layout is recognised in model-formats/probe/ip-adapter). */

export interface IpAdapterWeights extends IpAdapterInfo {
  proj: { weight: Float32Array; bias: Float32Array }
  norm: { weight: Float32Array; bias: Float32Array }
  /** `ip_adapter.N.to_k_ip.weight` / `to_v_ip.weight` as stored (fp16 as raw bits, else float32). */
  kv: Map<string, { shape: number[]; data: Float32Array | Uint16Array }>
}

export async function loadIpAdapter(file: string): Promise<IpAdapterWeights> {
  const f = await openTensorFile(file)
  try {
    const info = await describeOpen(f)
    const kv = new Map<string, { shape: number[]; data: Float32Array | Uint16Array }>()
    for (const l of info.layers)
      for (const which of ['k', 'v'] as const) {
        const n = kvName(l.n, which)
        kv.set(n, { shape: f.info(n).shape, data: await f.readHalfOrFloat(n) })
      }
    return {
      ...info,
      proj: { weight: await f.readFloat32(PROJ_W), bias: await f.readFloat32(PROJ_B) },
      norm: { weight: await f.readFloat32(NORM_W), bias: await f.readFloat32(NORM_B) },
      kv,
    }
  } finally {
    await f.close()
  }
}

/**
 * Whether the adapter fits a UNet: same token width as its cross-attention, one decoupled layer per
 * cross-attention with the same inner width. Throws IpAdapterError('mismatch') naming the difference.
 */
export function assertAdapterFitsUnet(
  info: IpAdapterInfo,
  unet: { crossAttentionDim: number; layers: CrossAttentionLayer[]; label?: string },
): void {
  const name = path.basename(info.file)
  const model = unet.label ?? 'the checkpoint'
  const fam = (d: number): string => {
    const f = familyForContextDim(d)
    return f === 'sd-1' ? 'SD 1.x' : f === 'sdxl' ? 'SDXL' : f === 'sd-2' ? 'SD 2.x' : `${d}-wide context`
  }
  if (info.crossAttentionDim !== unet.crossAttentionDim)
    throw new IpAdapterError(
      `${name} is an IP-Adapter for ${fam(info.crossAttentionDim)} (tokens ${info.crossAttentionDim} wide) but ` +
        `${model} is ${fam(unet.crossAttentionDim)} (cross-attention ${unet.crossAttentionDim} wide); pick an adapter made for this model's family`,
      'mismatch',
    )
  const want = new Map(unet.layers.map((l) => [l.n, l]))
  const have = new Map(info.layers.map((l) => [l.n, l]))
  for (const l of unet.layers) {
    const h = have.get(l.n)
    if (!h)
      throw new IpAdapterError(
        `${name} has no weights for attention layer ${l.n} (${l.prefix}) of ${model}: it was made for another UNet layout`,
        'mismatch',
      )
    if (h.hidden !== l.hidden)
      throw new IpAdapterError(
        `${name}: layer ${l.n} is ${h.hidden} wide but ${model}'s ${l.prefix} is ${l.hidden} wide`,
        'mismatch',
      )
  }
  const extra = info.layers.filter((l) => !want.has(l.n))
  if (extra.length)
    throw new IpAdapterError(
      `${name} has ${info.layers.length} decoupled attention layers but ${model} has ${unet.layers.length} cross-attention layers: it was made for another UNet layout`,
      'mismatch',
    )
}
