import { PY_SPACE_CLASS } from './attention'

/**
 * A1111 prompt editing and alternation (`modules/prompt_parser.py::get_learned_conditioning_prompt_schedules`,
 * v1.6+ rules):
 *
 *   [from:to:when]   "from" until step `when`, then "to"        [to:when]   nothing, then "to"
 *   [from::when]     "from", then nothing                       [a|b|c]     a, b, c, a, ... one per step
 *
 * `when` with a decimal point is a fraction of the steps (`0.4`), without one a step number (`5`); it becomes
 * min(steps, int(value)) (truncated toward zero). With a hires pass (hiresSteps given), the hires schedule counts
 * `when` from the end of the first pass: fractions as (when - 1) * hiresSteps, step numbers as when - baseSteps.
 * The result is a list of [endAtStep, text]; the sampler's model call i (0-based) uses the first entry whose
 * endAtStep >= i (the first entry where none is).
 *
 * Upstream parses with a lark grammar; this is a hand-written parser for the same language:
 *
 *   start:       (prompt | /[][():]/+)*          (stray brackets and colons are allowed at the top only)
 *   prompt:      (emphasized | scheduled | alternate | plain | WHITESPACE)*
 *   emphasized:  "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
 *   scheduled:   "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
 *   alternate:   "[" prompt ("|" [prompt])+ "]"
 *   plain:       /([^\\\[\]():|]|\\.)+/
 *
 * Inside brackets every construct must be complete, so each one has a single possible extent and the parse is
 * deterministic. A prompt the grammar rejects (a `|` outside brackets, a trailing backslash) is used as written
 * for every step, as upstream does.
 */

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'scheduled'; before: Node[] | null; after: Node[]; number: string }
  | { kind: 'alternate'; options: Node[][] }

const SPACE = new RegExp(`[${PY_SPACE_CLASS}]`, 'u')
// lark's common.SIGNED_NUMBER: ["+"|"-"] (FLOAT | INT)
const NUMBER = /^[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+)/

class Fail extends Error {}

class Parser {
  pos = 0
  constructor(readonly s: string) {}

  /** prompt: a sequence ending before `)`, `]`, `:`, `|` or the end. Throws Fail on an incomplete construct. */
  prompt(): Node[] {
    const out: Node[] = []
    for (;;) {
      const c = this.s[this.pos]
      if (c === undefined || c === ')' || c === ']' || c === ':' || c === '|') return out
      if (c === '(' || c === '[') out.push(...this.structure())
      else out.push({ kind: 'text', text: this.plain() })
    }
  }

  /** plain: ([^\\[\]():|] | \\.)+ where `.` is anything but a newline. */
  plain(): string {
    const start = this.pos
    for (;;) {
      const c = this.s[this.pos]
      if (c === undefined || '[]():|'.includes(c)) break
      if (c === '\\') {
        const next = this.s[this.pos + 1]
        if (next === undefined || next === '\n') throw new Fail()
        this.pos += next.length + 1
        // a surrogate pair is one character for Python
        if (/[\ud800-\udbff]/.test(next) && /[\udc00-\udfff]/.test(this.s[this.pos] ?? '')) this.pos++
        continue
      }
      this.pos++
    }
    return this.s.slice(start, this.pos)
  }

  /** A bracketed construct at this.pos (which holds `(` or `[`); Fail where none parses. */
  structure(): Node[] {
    const start = this.pos
    const open = this.s[start]
    this.pos++
    if (open === '(') {
      const a = this.prompt()
      const c = this.s[this.pos]
      if (c === ')') {
        this.pos++
        return [{ kind: 'text', text: '(' }, ...a, { kind: 'text', text: ')' }]
      }
      if (c !== ':') throw new Fail()
      this.pos++
      const b = this.prompt()
      if (this.s[this.pos] !== ')') throw new Fail()
      this.pos++
      return [
        { kind: 'text', text: '(' },
        ...a,
        { kind: 'text', text: ':' },
        ...b,
        { kind: 'text', text: ')' },
      ]
    }
    const first = this.prompt()
    const c = this.s[this.pos]
    if (c === ']') {
      this.pos++
      return [{ kind: 'text', text: '[' }, ...first, { kind: 'text', text: ']' }]
    }
    if (c === '|') {
      const options = [first]
      while (this.s[this.pos] === '|') {
        this.pos++
        options.push(this.prompt())
      }
      if (this.s[this.pos] !== ']') throw new Fail()
      this.pos++
      return [{ kind: 'alternate', options }]
    }
    if (c !== ':') throw new Fail()
    this.pos++
    // [prompt : NUMBER]
    const when = this.numberClose()
    if (when !== undefined) return [{ kind: 'scheduled', before: null, after: first, number: when }]
    const second = this.prompt()
    if (this.s[this.pos] !== ':') throw new Fail()
    this.pos++
    const when2 = this.numberClose()
    if (when2 === undefined) throw new Fail()
    return [{ kind: 'scheduled', before: first, after: second, number: when2 }]
  }

  /** [WHITESPACE] NUMBER [WHITESPACE] "]" at this.pos: the number text (and consumes it all), else undefined. */
  numberClose(): string | undefined {
    let p = this.pos
    while (p < this.s.length && SPACE.test(this.s[p] as string)) p++
    const m = NUMBER.exec(this.s.slice(p))
    if (!m) return undefined
    let q = p + m[0].length
    while (q < this.s.length && SPACE.test(this.s[q] as string)) q++
    if (this.s[q] !== ']') return undefined
    this.pos = q + 1
    return m[0]
  }

  /** start: prompts and stray `[ ] ( ) :`; a `|` here (or an unparsable escape) fails the whole prompt. */
  start(): Node[] {
    const out: Node[] = []
    while (this.pos < this.s.length) {
      const c = this.s[this.pos] as string
      if (c === '(' || c === '[') {
        const at = this.pos
        try {
          out.push(...this.structure())
          continue
        } catch (err) {
          if (!(err instanceof Fail)) throw err
          this.pos = at + 1
          out.push({ kind: 'text', text: c })
          continue
        }
      }
      if (c === ')' || c === ']' || c === ':') {
        this.pos++
        out.push({ kind: 'text', text: c })
        continue
      }
      if (c === '|') throw new Fail()
      out.push({ kind: 'text', text: this.plain() })
    }
    return out
  }
}

function parseSchedule(prompt: string): Node[] | undefined {
  try {
    return new Parser(prompt).start()
  } catch (err) {
    if (err instanceof Fail) return undefined
    throw err
  }
}

export interface ScheduleOptions {
  /** Steps of the first pass (A1111's `steps`; doubled by A1111 for second-order samplers). */
  steps: number
  /** Steps of a hires pass: gives that pass's schedule (upstream's hires_steps). */
  hiresSteps?: number
  /** A1111's "use old prompt editing timelines" option (fractions < 1 of the steps, else step numbers). */
  oldScheduling?: boolean
}

/** [endAtStep, text] entries, ascending; the last one ends at `steps` (the hires steps for a hires schedule). */
export type PromptSchedule = [number, string][]

export class PromptScheduleError extends Error {}

/** A1111's get_learned_conditioning_prompt_schedules for one prompt. */
export function promptSchedule(prompt: string, o: ScheduleOptions): PromptSchedule {
  const hires = o.hiresSteps !== undefined && !o.oldScheduling
  const steps = hires ? (o.hiresSteps as number) : o.steps
  const intOffset = hires ? o.steps : 0
  const fltOffset = hires ? 1.0 : 0
  const tree = parseSchedule(prompt)
  if (!tree) return [[steps, prompt]]

  const whens = new Map<Node, number>()
  const ends = new Set<number>([steps])
  const visit = (nodes: readonly Node[]): void => {
    for (const n of nodes) {
      if (n.kind === 'scheduled') {
        // lark's Visitor goes bottom-up; the order does not matter for a set of steps
        if (n.before) visit(n.before)
        visit(n.after)
        let v = Number(n.number)
        if (o.oldScheduling) v = v < 1 ? v * steps : v
        else v = n.number.includes('.') ? (v - fltOffset) * steps : v - intOffset
        if (!Number.isFinite(v))
          throw new PromptScheduleError(`prompt editing: the step number ${n.number} is too large`)
        const when = Math.min(steps, Math.trunc(v))
        whens.set(n, when)
        if (when >= 1) ends.add(when)
      } else if (n.kind === 'alternate') {
        n.options.forEach(visit)
        for (let s = 1; s <= steps; s++) ends.add(s)
      }
    }
  }
  visit(tree)

  const textAt = (step: number, nodes: readonly Node[]): string => {
    let out = ''
    for (const n of nodes) {
      if (n.kind === 'text') out += n.text
      else if (n.kind === 'scheduled')
        out += step <= (whens.get(n) as number) ? textAt(step, n.before ?? []) : textAt(step, n.after)
      else out += textAt(step, n.options[(step - 1) % n.options.length] as Node[])
    }
    return out
  }
  return [...ends].sort((a, b) => a - b).map((t) => [t, textAt(t, tree)])
}

/** Index of the schedule entry model call `step` (0-based, A1111's CFGDenoiser.step) uses. */
export function scheduleIndexAt(schedule: readonly (readonly [number, unknown])[], step: number): number {
  const i = schedule.findIndex(([end]) => step <= end)
  return i < 0 ? 0 : i
}

/** Whether a prompt uses editing or alternation at all (a schedule with more than one entry). */
export function hasPromptEditing(prompt: string, steps = 100): boolean {
  try {
    return promptSchedule(prompt, { steps }).length > 1
  } catch {
    return false
  }
}

/**
 * A1111 samplers marked `second_order` (two model calls per step): A1111 builds their prompt schedules over twice
 * the steps, since its step counter counts model calls. Legacy names with a schedule suffix ("DPM2 a Karras") count.
 */
export function isSecondOrderSampler(name: string): boolean {
  return /^(?:Heun|DPM2|DPM2 a|DPM\+\+ 2S a|DPM\+\+ SDE|Restart)(?: Karras| Exponential)?$/.test(name.trim())
}
