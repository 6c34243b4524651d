import type { CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/** input_ids -> last_hidden_state and CLIP-skip-2 states, and the same with the case's LoRA merged. */
export const textEncoderCase: CaseRunner = async (ctx) => {
  const ids = await ctx.given('input_ids')
  if (ids.dtype !== 'I64') throw new Error(`case ${ctx.def.name}: input_ids must be int64`)
  const [batch = 1, seq = 77] = ids.shape
  const ckpt = await ctx.models.checkpoint(ctx.def)
  const out: Record<string, RefTensor> = {}
  const run = async (prefix: string, loras: Parameters<typeof ctx.models.modelSet>[1]): Promise<void> => {
    const set = await ctx.models.modelSet(ckpt, loras)
    const last = await set.encodeText(ids.data as BigInt64Array, batch, 1)
    const pen = await set.encodeText(ids.data as BigInt64Array, batch, 2)
    const width = last.dims[2] ?? 0
    out[`${prefix}last_hidden_state`] = f32([batch, seq, width], last.data as Float32Array)
    out[`${prefix}penultimate_hidden_state_ln`] = f32([batch, seq, width], pen.data as Float32Array)
  }
  await run('', [])
  if (ctx.wants('lora_last_hidden_state') || ctx.wants('lora_penultimate_hidden_state_ln'))
    await run('lora_', [await ctx.models.lora(ctx.def)])
  return out
}
