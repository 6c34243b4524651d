import type { CaseRunner } from './types'

/**
 * prompts[i].prompt -> [BOS, BPE ids, EOS] padded with EOS to the case's length (77); for SDXL sets also
 * `input_ids_2`, the second tokenizer's ids (the same, padded with 0).
 */
export const tokenizerCase: CaseRunner = async (ctx) => {
  const prompts = (ctx.def as { prompts?: unknown }).prompts
  if (!Array.isArray(prompts)) throw new Error(`case ${ctx.def.name}: no prompts list`)
  const texts = prompts.map((p) =>
    typeof p === 'string' ? p : String((p as { prompt?: unknown }).prompt ?? ''),
  )
  const length = ctx.def.tensors.input_ids?.shape[1] ?? 77
  const tok = await ctx.models.tokenizerFor()
  const padded = (padToken?: number): BigInt64Array => {
    const ids = new BigInt64Array(texts.length * length)
    texts.forEach((t, i) => {
      const { ids: row } = tok.encodePadded(t, { maxLength: length, padToken })
      for (let j = 0; j < length; j++) ids[i * length + j] = BigInt(row[j] ?? 0)
    })
    return ids
  }
  const shape = [texts.length, length]
  return {
    input_ids: { dtype: 'I64', shape, data: padded() },
    ...(ctx.wants('input_ids_2') ? { input_ids_2: { dtype: 'I64', shape, data: padded(0) } } : {}),
  }
}
