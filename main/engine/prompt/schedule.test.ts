import { describe, expect, it } from 'vitest'
import type { PromptSchedule } from './schedule'
import { hasPromptEditing, promptSchedule, scheduleIndexAt } from './schedule'

const g = (p: string, steps = 10, hiresSteps?: number): PromptSchedule =>
  promptSchedule(p, { steps, hiresSteps })

describe('promptSchedule: A1111 doctests (v1.10)', () => {
  it.each<[string, PromptSchedule]>([
    ['test', [[10, 'test']]],
    [
      'a [b:3]',
      [
        [3, 'a '],
        [10, 'a b'],
      ],
    ],
    [
      'a [b: 3]',
      [
        [3, 'a '],
        [10, 'a b'],
      ],
    ],
    [
      'a [[[b]]:2]',
      [
        [2, 'a '],
        [10, 'a [[b]]'],
      ],
    ],
    [
      '[(a:2):3]',
      [
        [3, ''],
        [10, '(a:2)'],
      ],
    ],
    [
      'a [b : c : 1] d',
      [
        [1, 'a b  d'],
        [10, 'a  c  d'],
      ],
    ],
    [
      'a[b:[c:d:2]:1]e',
      [
        [1, 'abe'],
        [2, 'ace'],
        [10, 'ade'],
      ],
    ],
    ['a [unbalanced', [[10, 'a [unbalanced']]],
    [
      'a [b:.5] c',
      [
        [5, 'a  c'],
        [10, 'a b c'],
      ],
    ],
    // upstream's doctest here is stale; lark 1.1 rejects the prompt, so it is used as written
    ['a [{b|d{:.5] c', [[10, 'a [{b|d{:.5] c']]],
    [
      '((a][:b:c [d:3]',
      [
        [3, '((a][:b:c '],
        [10, '((a][:b:c d'],
      ],
    ],
  ])('%j', (p, expected) => expect(g(p)).toEqual(expected))

  it('alternation cycles one option per step, empty options included', () => {
    expect(g('[a|(b:1.1)]').map(([, t]) => t)).toEqual(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 'a' : '(b:1.1)')),
    )
    expect(g('[fe|]male').map(([, t]) => t)).toEqual(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 'female' : 'male')),
    )
    expect(g('[fe|||]male').map(([, t]) => t)).toEqual(
      Array.from({ length: 10 }, (_, i) => (i % 4 === 0 ? 'female' : 'male')),
    )
    expect(g('[cat|dog]', 3)).toEqual([
      [1, 'cat'],
      [2, 'dog'],
      [3, 'cat'],
    ])
  })

  it('hires schedules count from the end of the first pass', () => {
    expect(g('a [b:.5] c', 10, 10)).toEqual([[10, 'a b c']])
    expect(g('a [b:1.5] c', 10, 10)).toEqual([
      [5, 'a  c'],
      [10, 'a b c'],
    ])
    expect(g('a [b:15] c', 10, 10)).toEqual([
      [5, 'a  c'],
      [10, 'a b c'],
    ])
  })

  it('step numbers vs fractions: a decimal point makes a fraction; int() truncates', () => {
    expect(g('[a:b:1]', 20)[0]).toEqual([1, 'a'])
    expect(g('[a:b:1.0]', 20)).toEqual([[20, 'a']]) // 1.0 = all 20 steps
    expect(g('[a:b:0.29]', 100)[0]).toEqual([28, 'a']) // 0.29 * 100 = 28.999999999999996
    expect(g('[a:b:1e1]', 20)[0]).toEqual([10, 'a']) // no '.': a step number
    expect(g('[a:b:0]', 20)).toEqual([[20, 'b']]) // never before step 0
    expect(g('[a::0.6]', 10)).toEqual([
      [6, 'a'],
      [10, ''],
    ])
    expect(g('[a:0.3]', 10)).toEqual([
      [3, ''],
      [10, 'a'],
    ])
    expect(g('[a:b:50]', 20)).toEqual([[20, 'a']])
  })

  it('prompts the grammar rejects are used as written', () => {
    expect(g('a | b [c:d:3]')).toEqual([[10, 'a | b [c:d:3]']]) // `|` outside brackets
    expect(g('trailing \\')).toEqual([[10, 'trailing \\']])
    expect(g('[a:b:c:3]')).toEqual([[10, '[a:b:c:3]']])
    expect(g('\\[a:b:3\\]')).toEqual([[10, '\\[a:b:3\\]']])
  })

  it('the sampler call i (0-based) uses the first entry ending at or after i', () => {
    const s = g('[a:b:3]')
    expect([0, 1, 2, 3, 4, 9, 10, 11].map((i) => scheduleIndexAt(s, i))).toEqual([0, 0, 0, 0, 1, 1, 1, 0])
    expect(hasPromptEditing('a [b:c:0.5]')).toBe(true)
    expect(hasPromptEditing('a (b:1.2) [c]')).toBe(false)
  })
})

// Random prompts whose schedule lark 1.1.5 computed with upstream's grammar and functions (CPython 3.11):
// [prompt, steps, hires steps, schedule]
const LARK: [string, number, number | undefined, PromptSchedule][] = [
  [' (\\[-2.5', 7, undefined, [[7, ' (\\[-2.5']]],
  [
    ' 7  [:0.3]\t1e1)-2 7\u00e912',
    13,
    undefined,
    [
      [3, ' 7  \t1e1)-2 7\u00e912'],
      [13, ' 7  \t1e1)-2 7\u00e912'],
    ],
  ],
  [
    '1.5+4a[0.5|1.5]\n\t',
    10,
    9,
    [
      [1, '1.5+4a0.5\n\t'],
      [2, '1.5+4a1.5\n\t'],
      [3, '1.5+4a0.5\n\t'],
      [4, '1.5+4a1.5\n\t'],
      [5, '1.5+4a0.5\n\t'],
      [6, '1.5+4a1.5\n\t'],
      [7, '1.5+4a0.5\n\t'],
      [8, '1.5+4a1.5\n\t'],
      [9, '1.5+4a0.5\n\t'],
    ],
  ],
  ['312+4b c0.5\\', 20, undefined, [[20, '312+4b c0.5\\']]],
  [
    '::1e1  x[:0.3]',
    20,
    undefined,
    [
      [6, '::1e1  x'],
      [20, '::1e1  x'],
    ],
  ],
  [
    '[-2 7x 71.53122. 7:0.3] ',
    4,
    undefined,
    [
      [1, ' '],
      [4, '-2 7x 71.53122. 7 '],
    ],
  ],
  [
    '[0.5:0.3] 7   ',
    18,
    undefined,
    [
      [5, ' 7   '],
      [18, '0.5 7   '],
    ],
  ],
  [
    '[\n\n:0.3]\t2..5-2  3',
    6,
    undefined,
    [
      [1, '\t2..5-2  3'],
      [6, '\n\n\t2..5-2  3'],
    ],
  ],
  [
    '\\-2122. [a:0.3]-2x1.5',
    5,
    undefined,
    [
      [1, '\\-2122. -2x1.5'],
      [5, '\\-2122. a-2x1.5'],
    ],
  ],
  [
    '\\: 7)[x:0.3]7 ',
    13,
    undefined,
    [
      [3, '\\: 7)7 '],
      [13, '\\: 7)x7 '],
    ],
  ],
  ['\\[31e10.5\\[1e1', 10, undefined, [[10, '\\[31e10.5\\[1e1']]],
  [
    '\u00e91.57 a]7 [\\[1e1\u00e9:0.3]3',
    5,
    undefined,
    [
      [1, '\u00e91.57 a]7 3'],
      [5, '\u00e91.57 a]7 \\[1e1\u00e93'],
    ],
  ],
  [
    '\u00e9\\[[:0.3]7 \\:.5',
    14,
    undefined,
    [
      [4, '\u00e9\\[7 \\:.5'],
      [14, '\u00e9\\[7 \\:.5'],
    ],
  ],
  ['\u00e9|12:0.3]\\: 7)x3[', 11, undefined, [[11, '\u00e9|12:0.3]\\: 7)x3[']]],
  ['|+4:0.3]0.51.5[:0.3]3[) ', 3, undefined, [[3, '|+4:0.3]0.51.5[:0.3]3[) ']]],
  ['|\\0.51.5a', 7, undefined, [[7, '|\\0.51.5a']]],
]

describe('promptSchedule against lark', () => {
  it.each(LARK)('%j (%d steps, hires %s)', (p, steps, hires, expected) => {
    expect(g(p, steps, hires)).toEqual(expected)
  })
})
