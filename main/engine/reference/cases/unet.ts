import * as ort from 'onnxruntime-node'
import type { AddedConditioning } from '../../pipelines/types'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * The `unet` case: eps at every timestep (one scalar per call, broadcast over the batch), the same with the
 * case's LoRA merged, the inpainting (9-channel) UNet on `inpaint_sample`, and one call on odd latent sizes.
 * SDXL sets also give the added conditioning (`text_embeds`, `time_ids`; `odd_time_ids` for the odd call).
 * Trace tensors (debug_*) are not produced here: the converted graph has no debug outputs (the graph test
 * main/engine/graphs/unet.test.ts checks them with a debug build).
 */

function slice(t: RefTensor, first: number, count: number): RefTensor {
  const [n = 1, ...rest] = t.shape
  const per = (t.data as Float32Array).length / n
  return f32([count, ...rest], (t.data as Float32Array).slice(first * per, (first + count) * per))
}

/** Which timesteps[k] the odd-size call used: the manifest says "timesteps[k]" in the output's description. */
function oddTimestepIndex(ctx: CaseContext): number {
  const outputs = (ctx.def as Record<string, unknown>).outputs as Record<string, unknown> | undefined
  const text = typeof outputs?.odd_eps === 'string' ? outputs.odd_eps : ''
  const m = /timesteps\[(\d+)\]/.exec(text)
  return m ? Number(m[1]) : 1
}

/** encoder_hidden_states[:n] when the description says so, e.g. "encoder_hidden_states[:1]". */
function oddContextRows(ctx: CaseContext, batch: number): number {
  const outputs = (ctx.def as Record<string, unknown>).outputs as Record<string, unknown> | undefined
  const text = typeof outputs?.odd_eps === 'string' ? outputs.odd_eps : ''
  const m = /encoder_hidden_states\[:(\d+)\]/.exec(text)
  return m ? Number(m[1]) : batch
}

export const unetCase: CaseRunner = async (ctx) => {
  const timesteps = (await ctx.given('timesteps')).data as Float32Array
  const context = await ctx.given('encoder_hidden_states')
  const out: Record<string, RefTensor> = {}
  const tensor = (t: RefTensor): ort.Tensor => new ort.Tensor('float32', t.data as Float32Array, t.shape)
  const sdxl = ctx.hasGiven('text_embeds') && ctx.hasGiven('time_ids')
  const textEmbeds = sdxl ? await ctx.given('text_embeds') : undefined
  const timeIds = sdxl ? await ctx.given('time_ids') : undefined
  const added = (rows: number, ids = timeIds): AddedConditioning | undefined =>
    textEmbeds && ids
      ? { textEmbeds: tensor(slice(textEmbeds, 0, rows)), timeIds: tensor(slice(ids, 0, rows)) }
      : undefined

  /** eps for each timestep, stacked as [T, ...eps shape]. */
  const sweep = async (
    set: Awaited<ReturnType<typeof ctx.models.modelSet>>,
    sample: RefTensor,
  ): Promise<RefTensor> => {
    const rows: Float32Array[] = []
    let dims: readonly number[] = []
    for (const t of timesteps) {
      if (ctx.signal?.aborted) throw new Error('aborted')
      const eps = await set.unet(tensor(sample), t, tensor(context), added(sample.shape[0] ?? 1))
      rows.push(eps.data as Float32Array)
      dims = eps.dims
    }
    const data = new Float32Array(rows.reduce((a, r) => a + r.length, 0))
    rows.forEach((r, i) => data.set(r, i * r.length))
    return f32([timesteps.length, ...dims], data)
  }

  const ckpt = await ctx.models.checkpoint(ctx.def)
  const base = await ctx.models.modelSet(ckpt)
  const sample = await ctx.given('sample')
  if (ctx.wants('eps')) out.eps = await sweep(base, sample)
  if (ctx.wants('odd_eps') && ctx.hasGiven('odd_sample')) {
    const odd = await ctx.given('odd_sample')
    const rows = oddContextRows(ctx, odd.shape[0] ?? 1)
    const k = oddTimestepIndex(ctx)
    const oddIds = ctx.hasGiven('odd_time_ids') ? await ctx.given('odd_time_ids') : timeIds
    const eps = await base.unet(
      tensor(odd),
      timesteps[k] as number,
      tensor(slice(context, 0, rows)),
      added(rows, oddIds),
    )
    out.odd_eps = f32([...eps.dims], eps.data as Float32Array)
  }
  if (ctx.wants('lora_eps')) {
    ctx.log('LoRA')
    out.lora_eps = await sweep(await ctx.models.modelSet(ckpt, [await ctx.models.lora(ctx.def)]), sample)
  }
  if (ctx.wants('inpaint_eps') && ctx.hasGiven('inpaint_sample')) {
    ctx.log('inpainting UNet')
    const inpaint = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def, 'inpaint'))
    out.inpaint_eps = await sweep(inpaint, await ctx.given('inpaint_sample'))
  }
  return out
}
