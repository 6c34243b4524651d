/**
 * Retry policy shared by the API clients and the download manager: exponential backoff with full jitter,
 * capped, and a server's Retry-After (or HF RateLimit reset) taking precedence when it is longer.
 * `sleep` and `random` are injectable so tests run without real waiting.
 */

export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  retries: number
  baseDelayMs: number
  maxDelayMs: number
  /** Upper bound for a server-requested wait; longer Retry-After values fail instead of hanging. */
  maxRetryAfterMs: number
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  random: () => number
}

export const defaultRetryPolicy: RetryPolicy = {
  retries: 4,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 5 * 60_000,
  sleep: abortableSleep,
  random: Math.random,
}

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return { ...defaultRetryPolicy, ...overrides }
}

/** Delay before retry number `attempt` (1-based). */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  // Half fixed, half jitter: never zero, never above the cap.
  const backoff = Math.round(exp / 2 + (policy.random() * exp) / 2)
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.max(backoff, retryAfterMs)
  return backoff
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
      return
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Retry-After as milliseconds: integer seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined || v.trim() === '') return undefined
  const trimmed = v.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - now)
}

/** HF `RateLimit: "resolvers";r=0;t=172` → 172000 (ms until the window resets). */
export function parseRateLimitReset(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (!v) return undefined
  const m = /(?:^|;)\s*t=(\d+)/.exec(v)
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1000
}
