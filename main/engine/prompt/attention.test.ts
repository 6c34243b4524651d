import { describe, expect, it } from 'vitest'
import { parsePromptAttention, toA1111Pairs } from './attention'
import { extractExtraNetworks } from './extra-networks'
import { formatComposablePrompt, parseComposablePrompt } from './composable'

const parse = (s: string): [string, number][] => toA1111Pairs(parsePromptAttention(s))

describe('parsePromptAttention (A1111 doctests and more)', () => {
  const cases: [string, [string, number][]][] = [
    ['normal text', [['normal text', 1.0]]],
    [
      'an (important) word',
      [
        ['an ', 1.0],
        ['important', 1.1],
        [' word', 1.0],
      ],
    ],
    ['(unbalanced', [['unbalanced', 1.1]]],
    ['\\(literal\\]', [['(literal]', 1.0]]],
    ['(unnecessary)(parens)', [['unnecessaryparens', 1.1]]],
    [
      'a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).',
      [
        ['a ', 1.0],
        ['house', 1.5730000000000004],
        [' ', 1.1],
        ['on', 1.0],
        [' a ', 1.1],
        ['hill', 0.55],
        [', sun, ', 1.1],
        ['sky', 1.4641000000000006],
        ['.', 1.1],
      ],
    ],
    ['[a]', [['a', 1 / 1.1]]],
    ['[[a]]', [['a', 1 / 1.1 / 1.1]]],
    ['[unbalanced', [['unbalanced', 1 / 1.1]]],
    [
      '(a:1.3) b',
      [
        ['a', 1.3],
        [' b', 1.0],
      ],
    ],
    ['(a:-0.5)', [['a', -0.5]]],
    ['(a:.5)', [['a', 0.5]]],
    ['(a: 1.2)', [['a', 1.2]]], // A1111 1.7+: spaces around the weight
    ['(chibi: 1.2)', [['chibi', 1.2]]],
    ['(masterpiece:1.2 )', [['masterpiece', 1.2]]],
    ['(a:\t1.5\n)', [['a', 1.5]]],
    ['(a:\u00a01.5)', [['a', 1.5]]], // Python \s is Unicode whitespace
    ['(a:\ufeff1.5)', [['a:\ufeff1.5', 1.1]]], // ... but not U+FEFF (JavaScript's \s would match)
    ['(a:٣)', [['a', 3]]], // Python \d and float() read other decimal digits
    ['(a: 1 .2)', [['a: 1 .2', 1.1]]],
    [
      'x:1.2) y',
      [
        ['x:1.2) y', 1.0], // no open bracket: literal text
      ],
    ],
    ['\\\\', [['\\', 1.0]]],
    ['a\\b', [['ab', 1.0]]], // lone backslash becomes an empty literal
    ['a ) b ] c', [['a ) b ] c', 1.0]]],
    ['', [['', 1.0]]],
    ['((a)', [['a', 1.2100000000000002]]],
    [
      '(a [b] c)',
      [
        ['a ', 1.1],
        ['b', 1.0],
        [' c', 1.1],
      ],
    ],
    ['a: b: c', [['a: b: c', 1.0]]],
    ['(a:1.2.3)', [['a:1.2.3', 1.1]]], // deviation: upstream raises in float()
  ]
  it.each(cases)('%j', (input, expected) => {
    const got = parse(input)
    expect(got.length).toBe(expected.length)
    got.forEach(([t, w], i) => {
      const [et, ew] = expected[i] as [string, number]
      expect(t).toBe(et)
      expect(w).toBe(ew) // exact: same operations in the same order as Python
    })
  })

  it('splits BREAK into chunk markers', () => {
    expect(parse('a BREAK b')).toEqual([
      ['a', 1],
      ['BREAK', -1],
      ['b', 1],
    ])
    expect(parse('BREAK')).toEqual([
      ['', 1],
      ['BREAK', -1],
      ['', 1],
    ])
    // not a word on its own: no break
    expect(parse('aBREAK BREAKING breakfast')).toEqual([['aBREAK BREAKING breakfast', 1]])
    // Unicode word boundary like Python: é is a word character
    expect(parse('éBREAK')).toEqual([['éBREAK', 1]])
    // newlines around BREAK are eaten
    expect(parse('a\nBREAK\nb')).toEqual([
      ['a', 1],
      ['BREAK', -1],
      ['b', 1],
    ])
  })

  it('keeps BREAK a marker inside brackets and never merges two (deviation)', () => {
    expect(parse('(a BREAK b)')).toEqual([
      ['a', 1.1],
      ['BREAK', -1],
      ['b', 1.1],
    ])
    expect(parse('a BREAK BREAK b')).toEqual([
      ['a', 1],
      ['BREAK', -1],
      ['', 1],
      ['BREAK', -1],
      ['b', 1],
    ])
  })
})

describe('extractExtraNetworks', () => {
  const cases: [string, string, { name: string; weight: number; unetWeight: number; kind: string }[]][] = [
    ['a <lora:foo:0.7> cat', 'a  cat', [{ name: 'foo', weight: 0.7, unetWeight: 0.7, kind: 'lora' }]],
    ['<lora:foo>', '', [{ name: 'foo', weight: 1, unetWeight: 1, kind: 'lora' }]],
    ['<lyco:bar:0.5:0.25>x', 'x', [{ name: 'bar', weight: 0.5, unetWeight: 0.25, kind: 'lyco' }]],
    ['<lora:n:te=0.3:unet=0.9>', '', [{ name: 'n', weight: 0.3, unetWeight: 0.9, kind: 'lora' }]],
    [
      '<lora:a b-c.v2:-1> and <lora:d:2>',
      ' and ',
      [
        { name: 'a b-c.v2', weight: -1, unetWeight: -1, kind: 'lora' },
        { name: 'd', weight: 2, unetWeight: 2, kind: 'lora' },
      ],
    ],
    ['(<lora:x:0.5>:1.2)', '(:1.2)', [{ name: 'x', weight: 0.5, unetWeight: 0.5, kind: 'lora' }]],
  ]
  it.each(cases)('%j', (input, text, loras) => {
    const r = extractExtraNetworks(input)
    expect(r.text).toBe(text)
    expect(r.loras.map(({ name, weight, unetWeight, kind }) => ({ name, weight, unetWeight, kind }))).toEqual(
      loras,
    )
  })

  it('reads dyn and keeps other kinds separately', () => {
    const r = extractExtraNetworks('<lora:x:1:1:16> <hypernet:h:0.4>')
    expect(r.loras[0]?.dynDim).toBe(16)
    expect(r.others).toEqual([
      { kind: 'hypernet', positional: ['h', '0.4'], named: {}, raw: '<hypernet:h:0.4>' },
    ])
    expect(r.text).toBe(' ')
  })

  it('drops a malformed LoRA weight with a warning', () => {
    const r = extractExtraNetworks('a <lora:x:strong>')
    expect(r.loras).toEqual([])
    expect(r.text).toBe('a ')
    expect(r.warnings[0]).toContain('<lora:x:strong>')
  })
})

describe('parseComposablePrompt (A1111 AND)', () => {
  it.each([
    ['a cat', [{ text: 'a cat', weight: 1 }]],
    [
      'a cat AND a dog :0.5',
      [
        { text: 'a cat', weight: 1 },
        { text: ' a dog', weight: 0.5 },
      ],
    ],
    [
      'a:1.2 AND b: -0.3 ANDROID',
      [
        { text: 'a', weight: 1.2 },
        { text: ' b: -0.3 ANDROID', weight: 1 },
      ],
    ],
    [
      'x AND y:-1',
      [
        { text: 'x', weight: 1 },
        { text: ' y', weight: -1 },
      ],
    ],
  ])('%j', (input, expected) => {
    expect(parseComposablePrompt(input)).toEqual(expected)
  })

  it('formats back', () => {
    expect(
      formatComposablePrompt([
        { text: 'a', weight: 2 },
        { text: 'b', weight: -0.5 },
        { text: 'c', weight: 1 },
      ]),
    ).toBe('a :2 AND b :-0.5 AND c')
  })
})
