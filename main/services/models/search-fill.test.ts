import { describe, expect, it } from 'vitest'
import type { ModelSearchPage } from '../../../preload/contract-models'
import type { SearchRequest } from './browse'
import { searchFilled } from './search-fill'

type Card = ModelSearchPage['items'][number]
const card = (id: number): Card => ({ source: 'civitai', id: String(id), name: `m${id}` }) as unknown as Card

/** A source of `total` results that returns at most `per` per page, whatever the limit asked. */
function source(total: number, per: number, failAt?: number) {
  const asked: SearchRequest[] = []
  const search = async (req: SearchRequest): Promise<ModelSearchPage> => {
    asked.push(req)
    const start = Number(req.cursor ?? 0)
    if (failAt !== undefined && start >= failAt) throw new Error('HTTP 503 from civitai')
    const n = Math.min(per, req.limit ?? 20, total - start)
    const items = Array.from({ length: n }, (_, i) => card(start + i))
    const next = start + n < total ? String(start + n) : null
    return { items, nextCursor: next }
  }
  return { search, asked }
}

describe('searchFilled', () => {
  it('follows the cursor until the limit when pages hold fewer items than asked', async () => {
    const s = source(100, 2)
    const r = await searchFilled(s.search, { source: 'civitai' }, 20)
    expect(r.items.map((c) => c.id)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
    expect(r.stopped).toBe('limit')
    expect(r.pages).toBe(10)
    expect(r.nextCursor).toBe('20')
    expect(s.asked.map((q) => q.limit)).toEqual([20, 18, 16, 14, 12, 10, 8, 6, 4, 2])
  })

  it('stops at the end of the results and says so', async () => {
    const r = await searchFilled(source(5, 2).search, { source: 'civitai' }, 20)
    expect(r.items).toHaveLength(5)
    expect(r.stopped).toBe('end')
    expect(r.nextCursor).toBeNull()
  })

  it('keeps what it has when a later page fails, and throws when the first does', async () => {
    const r = await searchFilled(source(100, 3, 6).search, { source: 'civitai' }, 20)
    expect(r.items).toHaveLength(6)
    expect(r.stopped).toBe('error')
    expect(r.error).toMatch(/503/)
    await expect(searchFilled(source(100, 3, 0).search, { source: 'civitai' }, 20)).rejects.toThrow(/503/)
  })

  it('never loops on a repeated cursor and drops duplicates', async () => {
    const search = async (): Promise<ModelSearchPage> => ({ items: [card(1), card(2)], nextCursor: 'same' })
    const r = await searchFilled(search, { source: 'civitai' }, 10)
    expect(r.items).toHaveLength(2)
    expect(r.stopped).toBe('end')
  })
})
