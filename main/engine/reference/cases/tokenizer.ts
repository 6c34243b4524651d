import type { CaseRunner } from './types'

/** prompts[i].prompt -> [BOS, BPE ids, EOS] padded with EOS to the case's length (77). */
export const tokenizerCase: CaseRunner = async (ctx) => {
  const prompts = (ctx.def as { prompts?: unknown }).prompts
  if (!Array.isArray(prompts)) throw new Error(`case ${ctx.def.name}: no prompts list`)
  const texts = prompts.map((p) =>
    typeof p === 'string' ? p : String((p as { prompt?: unknown }).prompt ?? ''),
  )
  const length = ctx.def.tensors.input_ids?.shape[1] ?? 77
  const tok = await ctx.models.tokenizerFor()
  const ids = new BigInt64Array(texts.length * length)
  texts.forEach((t, i) => {
    const { ids: row } = tok.encodePadded(t, { maxLength: length })
    for (let j = 0; j < length; j++) ids[i * length + j] = BigInt(row[j] ?? 0)
  })
  return { input_ids: { dtype: 'I64', shape: [texts.length, length], data: ids } }
}
