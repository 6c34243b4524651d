import { describe, expect, it } from 'vitest'
import type { UnetConfig } from '../main/engine/graphs/unet-config'
import { median, unetFlops } from './unet-common'

const SD15: UnetConfig = {
  inChannels: 4,
  outChannels: 4,
  blockOutChannels: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  downAttention: [true, true, true, false],
  upAttention: [false, true, true, true],
  midAttention: true,
  crossAttentionDim: 768,
  timeProjDim: 320,
  timeEmbedDim: 1280,
  heads: 8,
}

describe('UNet FLOP count', () => {
  it('SD 1.5 at 512x512, batch 2, 77 tokens: 1.606 TFLOP (2 x MACs)', () => {
    const f = unetFlops(SD15, 2, 64, 64, 77)
    expect(f.total / 1e12).toBeCloseTo(1.6064, 4)
    expect(f.conv + f.linear + f.attention).toBe(f.total)
    // Convolutions dominate, then the transformer Linears, then the two attention products.
    expect(f.conv / f.total).toBeCloseTo(0.521, 3)
    expect(f.attention / f.total).toBeCloseTo(0.157, 3)
  })

  it('scales linearly with batch and rounds odd sizes up like the graph', () => {
    expect(unetFlops(SD15, 1, 64, 64, 77).total * 2).toBe(unetFlops(SD15, 2, 64, 64, 77).total)
    expect(unetFlops(SD15, 1, 9, 15, 77).total).toBeGreaterThan(unetFlops(SD15, 1, 8, 14, 77).total)
  })

  it('median', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })
})
