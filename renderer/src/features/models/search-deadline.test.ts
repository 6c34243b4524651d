import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Result } from '../../../../preload/contract-types'
import { deadlineMessage, SEARCH_DEADLINE_MS, withDeadline } from './search-deadline'

afterEach(() => vi.useRealTimers())

describe('the Models search deadline', () => {
  it('answers with the search when it comes in time', async () => {
    vi.useFakeTimers()
    const p = withDeadline(Promise.resolve<Result<number>>({ ok: true, value: 7 }), 1000, 'late')
    await expect(p).resolves.toEqual({ ok: true, value: 7 })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('turns a search that hangs into an unavailable error at the deadline, not before', async () => {
    vi.useFakeTimers()
    let settled: Result<number> | undefined
    void withDeadline(
      new Promise<Result<number>>(() => undefined),
      SEARCH_DEADLINE_MS,
      deadlineMessage('civitai'),
    ).then((r) => (settled = r))
    await vi.advanceTimersByTimeAsync(SEARCH_DEADLINE_MS - 1)
    expect(settled).toBeUndefined()
    await vi.advanceTimersByTimeAsync(1)
    expect(settled).toEqual({
      ok: false,
      error: {
        code: 'unavailable',
        message: 'Civitai did not answer within 10 s: it is unreachable or slow right now.',
      },
    })
  })

  it('keeps an early error from main (unreachable after its retries) as it is', async () => {
    const err: Result<number> = { ok: false, error: { code: 'unavailable', message: 'connect ECONNREFUSED' } }
    await expect(withDeadline(Promise.resolve(err), 1000, 'late')).resolves.toBe(err)
    expect(deadlineMessage('huggingface', 2500)).toBe(
      'Hugging Face did not answer within 3 s: it is unreachable or slow right now.',
    )
  })

  it('calls the timer functions unbound, as a browser requires ("Illegal invocation" otherwise)', async () => {
    const strict = {
      set: function (this: unknown, fn: () => void, ms: number) {
        if (this !== undefined) throw new TypeError('Illegal invocation')
        return setTimeout(fn, ms)
      } as unknown as typeof setTimeout,
      clear: function (this: unknown, t: ReturnType<typeof setTimeout>) {
        if (this !== undefined) throw new TypeError('Illegal invocation')
        clearTimeout(t)
      } as typeof clearTimeout,
    }
    const late = await withDeadline(new Promise<Result<number>>(() => undefined), 5, 'late', strict)
    expect(late).toEqual({ ok: false, error: { code: 'unavailable', message: 'late' } })
    await expect(
      withDeadline(Promise.resolve<Result<number>>({ ok: true, value: 1 }), 50, 'x', strict),
    ).resolves.toEqual({
      ok: true,
      value: 1,
    })
  })
})
