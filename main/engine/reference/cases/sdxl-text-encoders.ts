import type { CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * The SDXL `text_encoders` case: both encoders' penultimate hidden states (no final LayerNorm), encoder 2's
 * pooled projection, their concatenation (the UNet's context), and the same with the case's LoRA applied to
 * both encoders (lora_te1_* / lora_te2_*).
 */
export const sdxlTextEncodersCase: CaseRunner = async (ctx) => {
  const ids = await ctx.given('input_ids')
  const ids2 = await ctx.given('input_ids_2')
  if (ids.dtype !== 'I64' || ids2.dtype !== 'I64')
    throw new Error(`case ${ctx.def.name}: input_ids and input_ids_2 must be int64`)
  const [batch = 1, seq = 77] = ids.shape
  const ckpt = await ctx.models.checkpoint(ctx.def)
  const out: Record<string, RefTensor> = {}
  const run = async (prefix: string, loras: Parameters<typeof ctx.models.modelSet>[1]): Promise<void> => {
    const set = await ctx.models.modelSet(ckpt, loras)
    if (set.family !== 'sdxl') throw new Error(`case ${ctx.def.name}: ${ckpt} has no second text encoder`)
    const r = await set.encodeTextXL(ids.data as BigInt64Array, ids2.data as BigInt64Array, batch)
    const w1 = r.hidden.dims[2] ?? 0
    const w2 = r.hidden2.dims[2] ?? 0
    const a = r.hidden.data as Float32Array
    const b = r.hidden2.data as Float32Array
    const cat = new Float32Array(batch * seq * (w1 + w2))
    for (let i = 0; i < batch * seq; i++) {
      cat.set(a.subarray(i * w1, (i + 1) * w1), i * (w1 + w2))
      cat.set(b.subarray(i * w2, (i + 1) * w2), i * (w1 + w2) + w1)
    }
    if (!prefix) {
      out.te1_penultimate_hidden_state = f32([batch, seq, w1], a)
      out.te2_penultimate_hidden_state = f32([batch, seq, w2], b)
    }
    out[`${prefix}prompt_embeds`] = f32([batch, seq, w1 + w2], cat)
    out[`${prefix}pooled_prompt_embeds`] = f32([...r.pooled.dims], r.pooled.data as Float32Array)
  }
  await run('', [])
  if (ctx.wants('lora_prompt_embeds') || ctx.wants('lora_pooled_prompt_embeds'))
    await run('lora_', [await ctx.models.lora(ctx.def)])
  return out
}
