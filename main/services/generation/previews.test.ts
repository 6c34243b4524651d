import { describe, expect, it } from 'vitest'
import { PreviewClock } from './previews'

describe('preview clock', () => {
  it('keeps preview time within its budget of step time, at a steady rate, never on the last step', async () => {
    let now = 0
    const clock = new PreviewClock('taesd', 0.05, () => now)
    const stepMs = 1000
    const previewMs = 150 // 15 % of a step: one preview every 3 steps keeps it at 5 %
    const shown: number[] = []
    for (let step = 1; step <= 20; step++) {
      now += stepMs
      if (clock.due(step, 20)) {
        await clock.time(async () => {
          now += previewMs
          return Promise.resolve()
        })
        shown.push(step)
      }
    }
    expect(shown).toEqual([1, 4, 7, 10, 13, 16, 19])
    expect(clock.count).toBe(7)
    expect(clock.totalMs).toBe(7 * previewMs)
    expect(clock.totalMs / (20 * stepMs)).toBeLessThanOrEqual(0.06)
  })

  it('previews every step when previews are cheap, and the first step always', () => {
    let now = 0
    const clock = new PreviewClock('approx', 0.03, () => now)
    now += 10
    expect(clock.due(1, 2)).toBe(true)
    now += 10
    expect(clock.due(2, 2)).toBe(false)
  })
})
