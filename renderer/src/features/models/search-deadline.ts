/**
 * A bound on how long the Models search waits for Civitai or Hugging Face. Main retries a refused or reset
 * connection with backoff (about 13 s in all) and lets a silent server run to its 30 s timeout; the page
 * says "not answering" with Retry after SEARCH_DEADLINE_MS instead of waiting that long. Pure: unit-tested.
 */
import type { Result } from '../../../../preload/contract-types'

export const SEARCH_DEADLINE_MS = 10_000

export function sourceName(source: 'civitai' | 'huggingface'): string {
  return source === 'civitai' ? 'Civitai' : 'Hugging Face'
}

/** The answer, or an `unavailable` error when it takes longer than `ms`. */
export function withDeadline<T>(
  answer: Promise<Result<T>>,
  ms: number,
  message: string,
  timers: { set: typeof setTimeout; clear: typeof clearTimeout } = { set: setTimeout, clear: clearTimeout },
): Promise<Result<T>> {
  // Called as plain functions: a browser's setTimeout throws "Illegal invocation" with another `this`.
  const { set, clear } = timers
  return new Promise((resolve) => {
    const timer = set(() => resolve({ ok: false, error: { code: 'unavailable', message } }), ms)
    void answer.then((r) => {
      clear(timer)
      resolve(r)
    })
  })
}

export function deadlineMessage(source: 'civitai' | 'huggingface', ms = SEARCH_DEADLINE_MS): string {
  return `${sourceName(source)} did not answer within ${Math.round(ms / 1000)} s: it is unreachable or slow right now.`
}
