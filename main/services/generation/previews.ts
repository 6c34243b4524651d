/**
 * When to send a live preview: at a steady rate that keeps preview decoding within a share of the step
 * time (default 3 %). The first step always previews (that measures the decoder's cost); afterwards a
 * preview is due once the step time since the last one is at least cost / budget. The last step never
 * previews (the image follows). Preview time is not counted as step time.
 */
export class PreviewClock {
  private lastTick = performance.now()
  private sinceLast = 0
  private cost: number | undefined
  /** Previews sent and their total decode + encode time (ms), for benches and logs. */
  count = 0
  totalMs = 0

  constructor(
    readonly method: 'taesd' | 'approx',
    private readonly budget = 0.03,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastTick = now()
  }

  /** Call once per finished step. */
  due(step: number, total: number): boolean {
    const t = this.now()
    this.sinceLast += t - this.lastTick
    this.lastTick = t
    if (step >= total) return false
    if (this.cost === undefined) return true
    return this.sinceLast * this.budget >= this.cost
  }

  /** Runs one preview and records its cost (a moving average). */
  async time<T>(make: () => Promise<T>): Promise<T> {
    const t0 = this.now()
    try {
      return await make()
    } finally {
      const ms = this.now() - t0
      this.cost = this.cost === undefined ? ms : 0.5 * this.cost + 0.5 * ms
      this.count++
      this.totalMs += ms
      this.sinceLast = 0
      this.lastTick = this.now()
    }
  }
}
