import type { ModelSearchPage } from '../../../preload/contract-models'
import type { SearchRequest } from './browse'

/** Why a filled search stopped: it has `limit` results, the source has no more, or a page failed. */
export type SearchStop = 'limit' | 'end' | 'error'

export interface FilledSearch extends ModelSearchPage {
  stopped: SearchStop
  /** The failure that ended it early (stopped = 'error'). */
  error?: string
  pages: number
}

/**
 * Runs a search page after page (Civitai's cursor, Hugging Face's Link header, both as `nextCursor`) until
 * `limit` results: sources may return fewer items than asked per page (Civitai does, after its own NSFW and
 * availability filters). Stops early only at the end of the results or on an error after the first page
 * (an error on the first page is thrown), and says which. Duplicates across pages are dropped.
 */
export async function searchFilled(
  search: (req: SearchRequest) => Promise<ModelSearchPage>,
  req: SearchRequest,
  limit: number,
  maxPages = 25,
): Promise<FilledSearch> {
  const items: ModelSearchPage['items'] = []
  const seen = new Set<string>()
  const cursors = new Set<string>()
  let cursor = req.cursor ?? null
  let pages = 0
  for (;;) {
    let page: ModelSearchPage
    try {
      page = await search({ ...req, limit: Math.min(100, limit - items.length), cursor })
    } catch (err) {
      if (pages === 0) throw err
      const error = err instanceof Error ? err.message : String(err)
      return { items, nextCursor: cursor, stopped: 'error', error, pages }
    }
    pages++
    for (const c of page.items) {
      const key = `${c.source}:${c.id}`
      if (seen.has(key)) continue
      seen.add(key)
      items.push(c)
    }
    if (items.length >= limit)
      return { items: items.slice(0, limit), nextCursor: page.nextCursor, stopped: 'limit', pages }
    const next = page.nextCursor
    if (!next || cursors.has(next)) return { items, nextCursor: null, stopped: 'end', pages }
    if (pages >= maxPages)
      return {
        items,
        nextCursor: next,
        stopped: 'error',
        error: `gave up after ${pages} pages that held fewer results than asked`,
        pages,
      }
    cursors.add(next)
    cursor = next
  }
}
