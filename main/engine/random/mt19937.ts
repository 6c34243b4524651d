/** The 32-bit Mersenne Twister (MT19937) as PyTorch's CPU generator runs it (at::mt19937). */
export class MT19937 {
  private readonly state = new Uint32Array(624)
  private index = 624

  /** PyTorch seeds with the low 32 bits of the seed (init_with_uint32). */
  constructor(seed32: number) {
    const s = this.state
    s[0] = seed32 >>> 0
    for (let j = 1; j < 624; j++) {
      const prev = s[j - 1]! ^ (s[j - 1]! >>> 30)
      // 1812433253 * prev + j, mod 2^32
      s[j] = (Math.imul(1812433253, prev) + j) >>> 0
    }
  }

  private twist(): void {
    const s = this.state
    for (let i = 0; i < 624; i++) {
      const y = (s[i]! & 0x80000000) | (s[(i + 1) % 624]! & 0x7fffffff)
      let v = s[(i + 397) % 624]! ^ (y >>> 1)
      if (y & 1) v ^= 0x9908b0df
      s[i] = v >>> 0
    }
    this.index = 0
  }

  /** Next 32-bit output (unsigned). */
  next(): number {
    if (this.index >= 624) this.twist()
    let y = this.state[this.index++]!
    y ^= y >>> 11
    y ^= (y << 7) & 0x9d2c5680
    y ^= (y << 15) & 0xefc60000
    y ^= y >>> 18
    return y >>> 0
  }
}
