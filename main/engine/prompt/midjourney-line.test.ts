import { describe, expect, it } from 'vitest'
import {
  isMidjourneyLine,
  MIDJOURNEY_SYNTAX,
  MidjourneyPromptError,
  midjourneySpans,
  parseMidjourneyLine,
} from './midjourney-line'

describe('parseMidjourneyLine: one parser for every mode', () => {
  it('plain A1111 prompts are left alone', () => {
    const r = parseMidjourneyLine('a (red:1.2) house, <lora:x:0.5>', { negativePrompt: 'blur' })
    expect(r.original).toBeUndefined()
    expect(r.prompt).toBe('a (red:1.2) house, <lora:x:0.5>')
    expect(r.negativePrompt).toBe('blur')
    expect(isMidjourneyLine('a house')).toBe(false)
  })

  it('the issue line: --ar 2:3 --no text, watermark → 448×640, negative prompt, flags out of the text', () => {
    const line = 'a cat in a hat --ar 2:3 --no text, watermark'
    const r = parseMidjourneyLine(line)
    expect(r).toMatchObject({
      original: line,
      prompt: 'a cat in a hat',
      negativePrompt: 'text, watermark',
      width: 448,
      height: 640,
      images: [],
    })
    expect(r.warnings).toEqual([])
  })

  it('/imagine prompt: as typed in Discord, with ::, --seed and an unsupported flag', () => {
    const r = parseMidjourneyLine('/imagine prompt: castle::2 fog::-0.5 --seed 42 --stylize 250 --ar 16:9', {
      baseSize: 1024,
    })
    expect(r.prompt).toBe('castle :2 AND fog :-0.5')
    expect(r.subPrompts).toEqual([
      { text: 'castle', weight: 2 },
      { text: 'fog', weight: -0.5 },
    ])
    expect(r.seed).toBe(42)
    expect([r.width, r.height]).toEqual([1344, 768])
    expect(r.warnings).toHaveLength(1)
    expect(r.warnings[0]).toMatch(/--stylize/)
    expect(parseMidjourneyLine('/imagine a fox').prompt).toBe('a fox')
    expect(parseMidjourneyLine('/imagine a fox').original).toBe('/imagine a fox')
  })

  it('leading images and --iw become image prompts; gallery ids through isImageRef', () => {
    const isImageRef = (t: string): boolean => t === 'g123'
    const r = parseMidjourneyLine('https://x.test/a.png g123 a red fox --iw 2 --ar 3:2 --no snow', {
      isImageRef,
    })
    expect(r.images).toEqual(['https://x.test/a.png', 'g123'])
    expect(r.iw).toBe(2)
    expect(r.imageScale).toBe(0.75)
    expect(r).toMatchObject({ prompt: 'a red fox', negativePrompt: 'snow', width: 640, height: 448 })
  })

  it('/blend: images only, --dimensions; wrong counts are errors', () => {
    const r = parseMidjourneyLine('/blend https://a.test/1.png https://a.test/2.png --dimensions portrait')
    expect(r).toMatchObject({ blend: true, prompt: '', width: 448, height: 640, imageScale: 1 })
    expect(() => parseMidjourneyLine('/blend https://a.test/1.png')).toThrow(MidjourneyPromptError)
    expect(() => parseMidjourneyLine('a --iw 9 https://a.test/1.png')).toThrow(/--iw/)
  })

  it('the syntax table lists every supported flag', () => {
    const all = MIDJOURNEY_SYNTAX.map((r) => r.syntax).join(' ')
    for (const f of ['--ar', '--no', '::', '--seed', '--iw', '/blend', '/imagine']) expect(all).toContain(f)
  })
})

describe('midjourneySpans', () => {
  const join = (s: { text: string }[]): string => s.map((x) => x.text).join('')

  it('covers the input and marks command, images, flags, values, weights and unknown flags', () => {
    const line = '/imagine prompt: https://a.test/x.png castle::2 fog --ar 2:3 --no a, b --v 6 --s 50'
    const spans = midjourneySpans(line)
    expect(join(spans)).toBe(line)
    const kinds = spans.filter((s) => s.kind !== 'text').map((s) => [s.kind, s.text])
    expect(kinds).toEqual([
      ['command', '/imagine prompt:'],
      ['image', 'https://a.test/x.png'],
      ['weight', '::2'],
      ['flag', '--ar'],
      ['value', '2:3'],
      ['flag', '--no'],
      ['value', 'a, b'],
      ['unknown', '--v'],
      ['unknown', '6'],
      ['unsupported', '--s'],
      ['unsupported', '50'],
    ])
    expect(spans.find((s) => s.text === '--v')?.title).toMatch(/no Stable Diffusion equivalent/)
  })

  it('plain text is one text span', () => {
    expect(midjourneySpans('a (cat:1.2) in -- a hat')).toEqual([
      { kind: 'text', text: 'a (cat:1.2) in -- a hat' },
    ])
  })
})
