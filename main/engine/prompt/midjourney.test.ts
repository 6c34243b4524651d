import { describe, expect, it } from 'vitest'
import { aspectToSize, looksLikeMidjourney, parseMidjourneyPrompt, parseMultiPrompt } from './midjourney'

describe('aspectToSize', () => {
  it.each([
    [1, 1, 512, 512, 512],
    [2, 3, 512, 448, 640],
    [3, 2, 512, 640, 448],
    [16, 9, 512, 704, 384],
    [9, 16, 512, 384, 704],
    [4, 3, 512, 576, 448],
    [21, 9, 512, 768, 320],
    [16, 9, 1024, 1344, 768],
    [2, 3, 1024, 832, 1280],
    [1, 1, 768, 768, 768],
    [100, 1, 512, 5120, 64], // extreme: never below one multiple
  ])('%i:%i at %i² → %i×%i', (aw, ah, base, w, h) => {
    expect(aspectToSize(aw, ah, base)).toEqual({ width: w, height: h })
  })
  it('rejects non-positive ratios', () => {
    expect(() => aspectToSize(0, 1)).toThrow(RangeError)
  })
})

describe('parseMidjourneyPrompt', () => {
  it('maps --no, --ar, --seed and warns on --stylize', () => {
    const r = parseMidjourneyPrompt(
      'a red castle on a hill --no people, text --ar 2:3 --seed 42 --stylize 250',
      {
        negativePrompt: 'blurry',
      },
    )
    expect(r.prompt).toBe('a red castle on a hill')
    expect(r.negativePrompt).toBe('blurry, people, text')
    expect(r.aspect).toEqual({ width: 2, height: 3 })
    expect([r.width, r.height]).toEqual([448, 640])
    expect(r.seed).toBe(42)
    expect(r.subPrompts).toBeNull()
    expect(r.warnings).toHaveLength(1)
    expect(r.warnings[0]).toContain('--stylize')
  })

  it('--s is stylize too; unknown flags are ignored with a named warning', () => {
    const r = parseMidjourneyPrompt('cat --s 100 --v 6 --tile')
    expect(r.prompt).toBe('cat')
    expect(r.warnings).toHaveLength(3)
    expect(r.warnings[1]).toContain('--v')
    expect(r.warnings[2]).toContain('--tile')
  })

  it('empty negative: --no sets it', () => {
    expect(parseMidjourneyPrompt('x --no a,b ,, c').negativePrompt).toBe('a, b, c')
  })

  it('uses the base size for --ar', () => {
    const r = parseMidjourneyPrompt('x --ar 16:9', { baseSize: 1024 })
    expect([r.width, r.height]).toEqual([1344, 768])
  })

  it.each([
    ['x --ar 2-3', '--ar expects'],
    ['x --seed -1', '--seed expects'],
    ['x --seed 99999999999', '--seed expects'],
  ])('%s → warning', (input, w) => {
    const r = parseMidjourneyPrompt(input)
    expect(r.warnings[0]).toContain(w)
    expect(r.seed).toBeUndefined()
    expect(r.width).toBeUndefined()
  })

  it('keeps stray text after a single-value flag in the prompt', () => {
    const r = parseMidjourneyPrompt('a cat --ar 1:1 in space')
    expect(r.prompt).toBe('a cat in space')
    expect(r.warnings[0]).toContain('in space')
  })

  it('a::2 b::-0.5 → weighted sub-prompts and the A1111 AND form', () => {
    const r = parseMidjourneyPrompt('space ship::2 planets::-0.5 stars --ar 1:1')
    expect(r.subPrompts).toEqual([
      { text: 'space ship', weight: 2 },
      { text: 'planets', weight: -0.5 },
      { text: 'stars', weight: 1 },
    ])
    expect(r.prompt).toBe('space ship :2 AND planets :-0.5 AND stars')
    expect(r.warnings).toEqual([])
  })

  it('warns when the :: weights do not add up to a positive total', () => {
    const r = parseMidjourneyPrompt('a::1 b::-2')
    expect(r.warnings[0]).toContain('positive total')
  })

  it('a prompt without flags is unchanged', () => {
    const r = parseMidjourneyPrompt('a (cat:1.2), best quality')
    expect(r.prompt).toBe('a (cat:1.2), best quality')
    expect(r.negativePrompt).toBe('')
  })
})

describe('parseMultiPrompt / looksLikeMidjourney', () => {
  it.each([
    ['hot dog', [{ text: 'hot dog', weight: 1 }]],
    [
      'hot:: dog',
      [
        { text: 'hot', weight: 1 },
        { text: 'dog', weight: 1 },
      ],
    ],
    [
      'hot::1.5 dog::.5',
      [
        { text: 'hot', weight: 1.5 },
        { text: 'dog', weight: 0.5 },
      ],
    ],
    ['::2 a', [{ text: 'a', weight: 1 }]],
  ])('%j', (input, expected) => {
    expect(parseMultiPrompt(input)).toEqual(expected)
  })
  it('detects flags and ::', () => {
    expect(looksLikeMidjourney('a --ar 2:3')).toBe(true)
    expect(looksLikeMidjourney('a::2 b')).toBe(true)
    expect(looksLikeMidjourney('a (b:1.2) - c')).toBe(false)
    expect(looksLikeMidjourney('well--known')).toBe(false)
  })
})
