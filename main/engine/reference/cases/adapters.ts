import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { readLora } from '../../../model-formats/lora/lora-file'
import type { LycoModule } from '../../../model-formats/lora/lora-file'
import type { LycoPart, Mat } from '../../../model-formats/lora/lycoris'
import { doraUpdate, moduleUpdate, numelOf } from '../../../model-formats/lora/lycoris'
import { SafetensorsFile } from '../../../model-formats/safetensors'
import { pairsAsModules } from '../../lora/delta'
import type { CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * `adapter_*` cases (oracle-addons): a LyCORIS / DoRA / full-diff file applied to the tiny SD 1.5 with the
 * A1111 TE and UNet multipliers. eps and the text-encoder states come from the app's own path (applyLoras:
 * branches for plain pairs, in-graph weight deltas for the rest, multipliers as inputs); `delta.<module>` and
 * `delta_bias.<module>` are the layer updates computed by the same formulas straight from the files.
 */

interface DeltaLayer {
  checkpoint_weight: string
  shape: number[]
  multiplier: number
}

interface AdapterParams {
  te_multiplier: number
  unet_multiplier: number
}

function num(v: unknown, what: string, caseName: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`case ${caseName}: no ${what} in the manifest`)
  return v
}

export const adapterCase: CaseRunner = async (ctx) => {
  const def = ctx.def as Record<string, unknown>
  const name = ctx.def.name
  const adapterRel = def.adapter_file
  if (typeof adapterRel !== 'string') throw new Error(`case ${name}: no adapter_file`)
  const adapter = path.resolve(ctx.manifest.dir, adapterRel)
  const params = (def.params ?? {}) as Partial<AdapterParams>
  const te = num(params.te_multiplier, 'params.te_multiplier', name)
  const unet = num(params.unet_multiplier, 'params.unet_multiplier', name)
  const named = typeof def.checkpoint === 'string' ? path.resolve(ctx.manifest.dir, def.checkpoint) : ''
  const ckpt = named && fs.existsSync(named) ? named : await ctx.models.checkpoint(ctx.def)
  const out: Record<string, RefTensor> = {}

  const wantsTe = ctx.wants('te_last_hidden_state') || ctx.wants('te_penultimate_hidden_state_ln')
  if (ctx.wants('eps') || wantsTe) {
    const set = await ctx.models.modelSet(ckpt, [{ path: adapter, multiplier: unet, teMultiplier: te }])
    if (ctx.wants('eps')) {
      const timesteps = (await ctx.given('timesteps')).data as Float32Array
      const sample = await ctx.given('sample')
      const context = await ctx.given('encoder_hidden_states')
      const rows: Float32Array[] = []
      let dims: readonly number[] = []
      for (const t of timesteps) {
        if (ctx.signal?.aborted) throw new Error('aborted')
        const eps = await set.unet(
          new ort.Tensor('float32', sample.data as Float32Array, sample.shape),
          t,
          new ort.Tensor('float32', context.data as Float32Array, context.shape),
        )
        rows.push(eps.data as Float32Array)
        dims = eps.dims
      }
      const data = new Float32Array(rows.reduce((a, r) => a + r.length, 0))
      rows.forEach((r, i) => data.set(r, i * r.length))
      out.eps = f32([timesteps.length, ...dims], data)
    }
    if (wantsTe && ctx.hasGiven('input_ids')) {
      const ids = await ctx.given('input_ids')
      const [batch = 1, seq = 77] = ids.shape
      for (const [key, skip] of [
        ['te_last_hidden_state', 1],
        ['te_penultimate_hidden_state_ln', 2],
      ] as const) {
        if (!ctx.wants(key)) continue
        const h = await set.encodeText(ids.data as BigInt64Array, batch, skip)
        out[key] = f32([batch, seq, h.dims[2] ?? 0], h.data as Float32Array)
      }
    }
  }

  const layers = (def.delta_layers ?? {}) as Record<string, DeltaLayer>
  const wanted = Object.keys(layers).filter((m) => ctx.wants(`delta.${m}`) || ctx.wants(`delta_bias.${m}`))
  if (wanted.length) {
    ctx.log('layer updates')
    const file = await readLora(adapter)
    const base = await SafetensorsFile.open(ckpt)
    try {
      const modules = new Map<string, LycoModule>()
      for (const m of [...file.modules, ...pairsAsModules(file)])
        modules.set(
          `lora_${m.target === 'unet' ? 'unet' : m.target === 'text_encoder_2' ? 'te2' : 'te'}_${m.module}`,
          m,
        )
      for (const key of wanted) {
        const layer = layers[key] as DeltaLayer
        const mod = modules.get(key)
        if (!mod) throw new Error(`case ${name}: ${path.basename(adapter)} has no module ${key}`)
        const read = async (part: LycoPart): Promise<Mat | undefined> => {
          const k = mod.parts[part]
          return k ? { data: await file.st.readFloat32(k), shape: [...file.st.info(k).shape] } : undefined
        }
        const u = await moduleUpdate(mod.kind, read, numelOf(layer.shape), key)
        let d = u.dW
        if (u.doraScale)
          d = doraUpdate(await base.readFloat32(layer.checkpoint_weight), layer.shape, u.dW, u.doraScale)
        const m = layer.multiplier
        out[`delta.${key}`] = f32(
          layer.shape,
          d.map((x) => x * m),
        )
        if (u.dB && ctx.wants(`delta_bias.${key}`))
          out[`delta_bias.${key}`] = f32(
            [u.dB.length],
            u.dB.map((x) => x * m),
          )
      }
    } finally {
      await base.close()
      await file.st.close()
    }
  }
  return out
}
