import crypto from 'node:crypto'

/**
 * A pickle interpreter that never executes anything. It reads protocols 0-5, builds plain values (None,
 * bool, int, float, str, bytes, list, tuple, dict, set) and resolves every GLOBAL through an allow-list
 * the caller supplies: a global that is not on it stops the load with ForbiddenGlobalError naming it
 * (nothing is called, not even allowed globals: they are small TypeScript stand-ins). Persistent ids go
 * to the caller's persistentLoad. Every length is checked against the bytes that are left, so a damaged
 * or hostile stream ends with PickleDataError, never a hang or a huge allocation.
 */

/** Base class of values produced by allowed globals (tensors, storages, placeholders). */
export abstract class PyExtension {
  abstract readonly pyType: string
  /** BUILD on this value (pickle's __setstate__); the default keeps the state. */
  setState(state: PyValue): void {
    this.state = state
  }
  state: PyValue = null
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
  get length(): number {
    return this.items.length
  }
}

export class PyDict {
  private readonly map = new Map<unknown, [PyValue, PyValue]>()
  /** Instance attributes set by BUILD (an OrderedDict's `_metadata`). */
  attrs: PyValue = null
  constructor(readonly ordered = false) {}
  set(k: PyValue, v: PyValue): void {
    this.map.set(hashKey(k), [k, v])
  }
  get(k: PyValue): PyValue | undefined {
    return this.map.get(hashKey(k))?.[1]
  }
  has(k: PyValue): boolean {
    return this.map.has(hashKey(k))
  }
  get size(): number {
    return this.map.size
  }
  *entries(): IterableIterator<[PyValue, PyValue]> {
    for (const e of this.map.values()) yield e
  }
  *keys(): IterableIterator<PyValue> {
    for (const [k] of this.map.values()) yield k
  }
}

export class PySet {
  private readonly map = new Map<unknown, PyValue>()
  constructor(readonly frozen = false) {}
  add(v: PyValue): void {
    this.map.set(hashKey(v), v)
  }
  values(): IterableIterator<PyValue> {
    return this.map.values()
  }
  get size(): number {
    return this.map.size
  }
}

/** An inert instance of an allowed class (a placeholder: its constructor arguments and state are kept). */
export class PyObject extends PyExtension {
  constructor(
    readonly pyType: string,
    readonly args: readonly PyValue[],
  ) {
    super()
  }
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyGlobal
  | PyExtension

/** What an allowed global does when called (REDUCE, NEWOBJ, INST, OBJ). */
export interface GlobalImpl {
  /** Called with the positional arguments (and keyword arguments for NEWOBJ_EX). */
  call?: (args: PyValue[], kwargs?: PyDict) => PyValue
}

/** A resolved, allowed global. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly impl: GlobalImpl,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`
  }
}

export class PickleDataError extends Error {
  constructor(
    readonly problem: string,
    readonly position: number,
    readonly code: string,
  ) {
    super(`${problem} (at byte ${position} of the pickle)`)
    this.name = 'PickleDataError'
  }
}

export class ForbiddenGlobalError extends Error {
  constructor(
    readonly module: string,
    readonly globalName: string,
    readonly position: number,
  ) {
    super(`forbidden global ${module}.${globalName} (at byte ${position} of the pickle)`)
    this.name = 'ForbiddenGlobalError'
  }
  get qualified(): string {
    return `${this.module}.${this.globalName}`
  }
}

export class UnhashableError extends Error {}

/** Most values one dict key (a tuple or frozenset, nested) may stand for, counting shared parts each time. */
export const MAX_KEY_VALUES = 1_000_000
/** Deepest nesting of tuples / frozensets inside one dict key. */
const MAX_KEY_DEPTH = 512

/** A hashable composite (tuple or frozenset): its key and how many values it expands to. */
const compositeKeys = new WeakMap<object, { key: string; size: number }>()

class KeyBudgetError extends Error {}

/**
 * The key of a tuple or frozenset. Both are immutable, so the key is computed once per object; nested
 * composites contribute their (bounded) key, long bodies are replaced by their SHA-256, so a DAG of shared
 * tuples (`t = (t, t)` thirty times over, a 512-byte pickle) costs its number of objects, not 2^30.
 */
function compositeKey(k: PyTuple | PySet, depth: number): { key: string; size: number } {
  const hit = compositeKeys.get(k)
  if (hit) return hit
  if (depth > MAX_KEY_DEPTH) throw new KeyBudgetError(`a dict key nests deeper than ${MAX_KEY_DEPTH} levels`)
  let size = 1
  const parts: string[] = []
  for (const x of k instanceof PyTuple ? k.items : k.values()) {
    if (x instanceof PyTuple || (x instanceof PySet && x.frozen)) {
      const c = compositeKey(x, depth + 1)
      size += c.size
      parts.push(c.key)
    } else {
      size += 1
      parts.push(hashKeyString(x))
    }
    if (size > MAX_KEY_VALUES)
      throw new KeyBudgetError(
        `a dict key expands to more than ${MAX_KEY_VALUES} values (shared references nested like a zip bomb)`,
      )
  }
  const body = k instanceof PyTuple ? `t(${parts.join(',')})` : `f{${parts.sort().join(',')}}`
  const key =
    body.length > 256
      ? `\u0000h${crypto.createHash('sha256').update(body).digest('base64')}`
      : `\u0000${body}`
  const out = { key, size }
  compositeKeys.set(k, out)
  return out
}

function hashKey(k: PyValue): unknown {
  if (k === null || typeof k !== 'object') return k
  if (k instanceof PyTuple || (k instanceof PySet && k.frozen)) return compositeKey(k, 0).key
  if (k instanceof Uint8Array) return `\u0000b${Buffer.from(k).toString('hex')}`
  if (k instanceof PyGlobal) return `\u0000g${k.qualified}`
  throw new UnhashableError(`unhashable key type ${typeName(k)}`)
}

function hashKeyString(k: PyValue): string {
  const h = hashKey(k)
  return typeof h === 'string' ? JSON.stringify(h) : `${typeof h}:${String(h)}`
}

/** Most values the loaded object may expand to when every shared reference is followed (a DAG walk). */
export const MAX_EXPANDED_VALUES = 50_000_000
/** Most opcodes one pickle may run. */
export const MAX_PICKLE_OPS = 100_000_000

function children(v: PyValue): PyValue[] {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof PyGlobal) return []
  if (Array.isArray(v)) return v
  if (v instanceof PyTuple) return v.items as PyValue[]
  if (v instanceof PyDict) return [...[...v.entries()].flat(), v.attrs]
  if (v instanceof PySet) return [...v.values()]
  const out: PyValue[] = [v.state]
  if (v instanceof PyObject) out.push(...v.args)
  return out
}

/**
 * How many values `root` stands for when shared references are expanded (a back-reference of a cycle
 * counts once), computed in time linear in the distinct objects; Infinity past `limit`.
 */
export function expandedSize(root: PyValue, limit = MAX_EXPANDED_VALUES): number {
  const done = new Map<object, number>()
  const open = new Set<object>()
  const stack: { v: object; kids: PyValue[]; i: number; sum: number }[] = []
  const enter = (v: PyValue): number | undefined => {
    if (v === null || typeof v !== 'object') return 1
    const known = done.get(v)
    if (known !== undefined) return known
    if (open.has(v)) return 1
    open.add(v)
    stack.push({ v, kids: children(v), i: 0, sum: 1 })
    return undefined
  }
  let result = enter(root)
  while (stack.length > 0) {
    const f = stack[stack.length - 1] as (typeof stack)[number]
    if (f.i < f.kids.length) {
      const n = enter(f.kids[f.i++] as PyValue)
      if (n !== undefined) f.sum += n
      if (f.sum > limit) return Number.POSITIVE_INFINITY
      continue
    }
    stack.pop()
    open.delete(f.v)
    done.set(f.v, f.sum)
    const parent = stack[stack.length - 1]
    if (parent) {
      parent.sum += f.sum
      if (parent.sum > limit) return Number.POSITIVE_INFINITY
    } else result = f.sum
  }
  return result ?? 1
}

export function typeName(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'None'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float'
  if (typeof v === 'bigint') return 'int'
  if (typeof v === 'string') return 'str'
  if (v instanceof Uint8Array) return 'bytes'
  if (Array.isArray(v)) return 'list'
  if (v instanceof PyTuple) return 'tuple'
  if (v instanceof PyDict) return 'dict'
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set'
  if (v instanceof PyGlobal) return v.qualified
  return v.pyType
}

export interface UnpickleOptions {
  /** Resolves an allowed global; undefined refuses it (ForbiddenGlobalError). */
  resolveGlobal(module: string, name: string): GlobalImpl | undefined
  /** PERSID / BINPERSID; absent: persistent ids are an error. */
  persistentLoad?(pid: PyValue): PyValue
}

export interface UnpickleResult {
  value: PyValue
  /** Offset just past the STOP opcode (pickles can follow each other). */
  end: number
}

/** Largest integer literal accepted (bytes for LONG1/LONG4, digits for text LONG/INT). */
const MAX_INT_BYTES = 1024

const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' }

const latin1 = new TextDecoder('latin1')
const utf8 = new TextDecoder('utf-8')

/** Interprets one pickle starting at `start`; stops at STOP. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions, start = 0): UnpickleResult {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const stack: PyValue[] = []
  const marks: number[] = []
  const memo = new Map<number, PyValue>()
  let pos = start
  let opAt = start

  const fail = (problem: string, code = 'bad-pickle'): never => {
    throw new PickleDataError(problem, opAt, code)
  }
  const need = (n: number): void => {
    if (!(n >= 0) || pos + n > data.length)
      fail(
        `the pickle ends early: ${n} more bytes needed at byte ${pos}, ${data.length - pos} left`,
        'truncated',
      )
  }
  const u8 = (): number => {
    need(1)
    return data[pos++] as number
  }
  const u16 = (): number => {
    need(2)
    const v = view.getUint16(pos, true)
    pos += 2
    return v
  }
  const u32 = (): number => {
    need(4)
    const v = view.getUint32(pos, true)
    pos += 4
    return v
  }
  const i32 = (): number => {
    need(4)
    const v = view.getInt32(pos, true)
    pos += 4
    return v
  }
  const u64 = (): number => {
    need(8)
    const v = view.getBigUint64(pos, true)
    pos += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a length of ${v} bytes is impossible here`, 'too-large')
    return Number(v)
  }
  const bytes = (n: number): Uint8Array => {
    need(n)
    const b = data.subarray(pos, pos + n)
    pos += n
    return b
  }
  const line = (): string => {
    const nl = data.indexOf(0x0a, pos)
    if (nl < 0) fail('a text argument has no end of line', 'truncated')
    const s = latin1.decode(data.subarray(pos, nl))
    pos = nl + 1
    return s.endsWith('\r') ? s.slice(0, -1) : s
  }
  const push = (v: PyValue): void => {
    stack.push(v)
  }
  const floor = (): number => (marks.length ? (marks[marks.length - 1] as number) : 0)
  const pop = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow')
    return stack.pop() as PyValue
  }
  const top = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow')
    return stack[stack.length - 1] as PyValue
  }
  const popMark = (): PyValue[] => {
    const m = marks.pop()
    if (m === undefined) fail('no MARK to pop to')
    return stack.splice(m as number)
  }
  const intFrom = (v: bigint): number | bigint =>
    v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0
    if (b.length > MAX_INT_BYTES) fail(`an integer of ${b.length} bytes is too large`, 'too-large')
    let v = 0n
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
    if ((b[b.length - 1] as number) & 0x80) v -= 1n << BigInt(8 * b.length)
    return intFrom(v)
  }
  const decimal = (s: string, what: string): bigint => {
    const t = s.trim()
    if (t.length > MAX_INT_BYTES || !/^[+-]?\d+$/.test(t)) fail(`bad ${what} literal "${t.slice(0, 40)}"`)
    return BigInt(t)
  }
  const setItem = (d: PyValue, k: PyValue, v: PyValue): void => {
    if (!(d instanceof PyDict)) fail(`SETITEM on ${typeName(d)}, not a dict`)
    try {
      ;(d as PyDict).set(k, v)
    } catch (err) {
      if (err instanceof UnhashableError) fail(err.message)
      if (err instanceof KeyBudgetError) fail(err.message, 'too-large')
      throw err
    }
  }
  const addItem = (s: PyValue, v: PyValue): void => {
    if (!(s instanceof PySet) || s.frozen) fail(`ADDITEMS on ${typeName(s)}, not a set`)
    try {
      ;(s as PySet).add(v)
    } catch (err) {
      if (err instanceof UnhashableError) fail(err.message)
      if (err instanceof KeyBudgetError) fail(err.message, 'too-large')
      throw err
    }
  }
  const resolve = (module: string, name: string): PyGlobal => {
    const mod = PY2_MODULES[module] ?? module
    const impl = opts.resolveGlobal(mod, name)
    if (!impl) throw new ForbiddenGlobalError(module, name, opAt)
    return new PyGlobal(mod, name, impl)
  }
  const call = (fn: PyValue, args: PyValue, kwargs?: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) fail(`cannot call ${typeName(fn)}`)
    const g = fn as PyGlobal
    if (!(args instanceof PyTuple)) fail(`arguments to ${g.qualified} are a ${typeName(args)}, not a tuple`)
    if (kwargs !== undefined && !(kwargs instanceof PyDict))
      fail(`keyword arguments to ${g.qualified} are a ${typeName(kwargs)}`)
    if (!g.impl.call) fail(`${g.qualified} cannot be called here`)
    try {
      return (g.impl.call as NonNullable<GlobalImpl['call']>)(
        [...(args as PyTuple).items],
        kwargs as PyDict | undefined,
      )
    } catch (err) {
      if (err instanceof PickleDataError || err instanceof ForbiddenGlobalError) throw err
      return fail(`${g.qualified}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  const build = (inst: PyValue, state: PyValue): void => {
    if (inst instanceof PyDict) {
      // OrderedDict state: (None or {attr: value}) or ({...}, slots); only attributes are kept.
      let attrs = state
      if (state instanceof PyTuple && state.length === 2) attrs = state.items[0] ?? null
      if (attrs !== null && !(attrs instanceof PyDict)) fail(`BUILD on a dict with a ${typeName(attrs)}`)
      inst.attrs = attrs
      return
    }
    if (inst instanceof PyExtension) {
      inst.setState(state)
      return
    }
    fail(`BUILD on ${typeName(inst)}`)
  }

  let ops = 0
  for (;;) {
    if (++ops > MAX_PICKLE_OPS) fail(`the pickle runs more than ${MAX_PICKLE_OPS} operations`, 'too-large')
    opAt = pos
    const op = u8()
    switch (op) {
      case 0x80: {
        const proto = u8()
        if (proto > 5) fail(`unsupported pickle protocol ${proto}`)
        break
      }
      case 0x95: // FRAME: a length hint only
        if (u64() > data.length - pos) fail('a frame runs past the end of the data', 'truncated')
        break
      case 0x2e: {
        // STOP
        const v = pop()
        if (expandedSize(v) > MAX_EXPANDED_VALUES)
          fail(
            `the pickle's values expand to more than ${MAX_EXPANDED_VALUES} when shared references are followed (a reference bomb)`,
            'too-large',
          )
        return { value: v, end: pos }
      }
      case 0x28: // MARK
        marks.push(stack.length)
        break
      case 0x30: // POP
        if (marks.length && marks[marks.length - 1] === stack.length) marks.pop()
        else pop()
        break
      case 0x31: // POP_MARK
        popMark()
        break
      case 0x32: // DUP
        push(top())
        break
      case 0x4e: // NONE
        push(null)
        break
      case 0x88:
        push(true)
        break
      case 0x89:
        push(false)
        break
      case 0x49: {
        // INT (text); "00"/"01" are False/True in protocol 0
        const s = line()
        if (s === '00') push(false)
        else if (s === '01') push(true)
        else push(intFrom(decimal(s, 'INT')))
        break
      }
      case 0x4a: // BININT
        push(i32())
        break
      case 0x4b: // BININT1
        push(u8())
        break
      case 0x4d: // BININT2
        push(u16())
        break
      case 0x4c: {
        // LONG (text, trailing L)
        const s = line()
        push(intFrom(decimal(s.endsWith('L') ? s.slice(0, -1) : s, 'LONG')))
        break
      }
      case 0x8a: // LONG1
        push(longLE(bytes(u8())))
        break
      case 0x8b: {
        // LONG4
        const n = i32()
        if (n < 0) fail('negative LONG4 length')
        push(longLE(bytes(n)))
        break
      }
      case 0x46: {
        // FLOAT (text)
        const s = line().trim()
        const v = Number(s)
        if (s === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s)))
          fail(`bad FLOAT literal "${s.slice(0, 40)}"`)
        push(v)
        break
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8)
        push(view.getFloat64(pos, false))
        pos += 8
        break
      case 0x53: {
        // STRING (quoted repr, Python 2 str)
        push(decodeQuoted(line(), fail))
        break
      }
      case 0x54: {
        // BINSTRING
        const n = i32()
        if (n < 0) fail('negative BINSTRING length')
        push(latin1.decode(bytes(n)))
        break
      }
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(bytes(u8())))
        break
      case 0x56: // UNICODE (raw-unicode-escape)
        push(decodeRawUnicodeEscape(line()))
        break
      case 0x58: // BINUNICODE
        push(utf8.decode(bytes(u32())))
        break
      case 0x8c: // SHORT_BINUNICODE
        push(utf8.decode(bytes(u8())))
        break
      case 0x8d: // BINUNICODE8
        push(utf8.decode(bytes(u64())))
        break
      case 0x42: // BINBYTES
        push(bytes(u32()).slice())
        break
      case 0x43: // SHORT_BINBYTES
        push(bytes(u8()).slice())
        break
      case 0x8e: // BINBYTES8
        push(bytes(u64()).slice())
        break
      case 0x96: // BYTEARRAY8
        push(bytes(u64()).slice())
        break
      case 0x97:
      case 0x98:
        fail('out-of-band buffers (pickle protocol 5) are not supported')
        break
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]))
        break
      case 0x74: // TUPLE
        push(new PyTuple(popMark()))
        break
      case 0x85: {
        const a = pop()
        push(new PyTuple([a]))
        break
      }
      case 0x86: {
        const b = pop()
        const a = pop()
        push(new PyTuple([a, b]))
        break
      }
      case 0x87: {
        const c = pop()
        const b = pop()
        const a = pop()
        push(new PyTuple([a, b, c]))
        break
      }
      case 0x5d: // EMPTY_LIST
        push([])
        break
      case 0x6c: // LIST
        push(popMark())
        break
      case 0x61: {
        // APPEND
        const v = pop()
        const l = top()
        if (!Array.isArray(l)) fail(`APPEND to ${typeName(l)}, not a list`)
        ;(l as PyValue[]).push(v)
        break
      }
      case 0x65: {
        // APPENDS
        const items = popMark()
        const l = top()
        if (!Array.isArray(l)) fail(`APPENDS to ${typeName(l)}, not a list`)
        for (const it of items) (l as PyValue[]).push(it)
        break
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict())
        break
      case 0x64: {
        // DICT
        const items = popMark()
        if (items.length % 2) fail('DICT with an odd number of items')
        const d = new PyDict()
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i] as PyValue, items[i + 1] as PyValue)
        push(d)
        break
      }
      case 0x73: {
        // SETITEM
        const v = pop()
        const k = pop()
        setItem(top(), k, v)
        break
      }
      case 0x75: {
        // SETITEMS
        const items = popMark()
        if (items.length % 2) fail('SETITEMS with an odd number of items')
        const d = top()
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i] as PyValue, items[i + 1] as PyValue)
        break
      }
      case 0x8f: // EMPTY_SET
        push(new PySet())
        break
      case 0x90: {
        // ADDITEMS
        const items = popMark()
        const s = top()
        for (const it of items) addItem(s, it)
        break
      }
      case 0x91: {
        // FROZENSET
        const items = popMark()
        const s = new PySet(true)
        try {
          for (const it of items) s.add(it)
        } catch (err) {
          if (err instanceof UnhashableError) fail(err.message)
          if (err instanceof KeyBudgetError) fail(err.message, 'too-large')
          throw err
        }
        push(s)
        break
      }
      case 0x67: {
        // GET
        const k = Number(decimal(line(), 'GET'))
        if (!memo.has(k)) fail(`memo entry ${k} is not defined`)
        push(memo.get(k) as PyValue)
        break
      }
      case 0x68:
      case 0x6a: {
        const k = op === 0x68 ? u8() : u32()
        if (!memo.has(k)) fail(`memo entry ${k} is not defined`)
        push(memo.get(k) as PyValue)
        break
      }
      case 0x70: {
        // PUT
        memo.set(Number(decimal(line(), 'PUT')), top())
        break
      }
      case 0x71:
        memo.set(u8(), top())
        break
      case 0x72:
        memo.set(u32(), top())
        break
      case 0x94: // MEMOIZE
        memo.set(memo.size, top())
        break
      case 0x63: {
        // GLOBAL
        const module = line()
        const name = line()
        push(resolve(module, name))
        break
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop()
        const module = pop()
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings')
        push(resolve(module as string, name as string))
        break
      }
      case 0x52: {
        // REDUCE
        const args = pop()
        const fn = pop()
        push(call(fn, args))
        break
      }
      case 0x81: {
        // NEWOBJ
        const args = pop()
        const cls = pop()
        push(call(cls, args))
        break
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop()
        const args = pop()
        const cls = pop()
        push(call(cls, args, kwargs))
        break
      }
      case 0x69: {
        // INST
        const module = line()
        const name = line()
        const g = resolve(module, name)
        push(call(g, new PyTuple(popMark())))
        break
      }
      case 0x6f: {
        // OBJ
        const items = popMark()
        if (items.length === 0) fail('OBJ without a class')
        push(call(items[0] as PyValue, new PyTuple(items.slice(1))))
        break
      }
      case 0x62: {
        // BUILD
        const state = pop()
        build(top(), state)
        break
      }
      case 0x50: {
        // PERSID
        const pid = line()
        if (!opts.persistentLoad)
          fail('the pickle refers to external data (persistent id) where none is allowed')
        push(persist(opts, pid, fail))
        break
      }
      case 0x51: {
        // BINPERSID
        const pid = pop()
        if (!opts.persistentLoad)
          fail('the pickle refers to external data (persistent id) where none is allowed')
        push(persist(opts, pid, fail))
        break
      }
      case 0x82:
      case 0x83:
      case 0x84:
        fail('extension-registry codes (EXT1/2/4) are not supported')
        break
      default:
        fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`, 'bad-opcode')
    }
  }
}

function persist(opts: UnpickleOptions, pid: PyValue, fail: (p: string, code?: string) => never): PyValue {
  try {
    return (opts.persistentLoad as NonNullable<UnpickleOptions['persistentLoad']>)(pid)
  } catch (err) {
    if (err instanceof PickleDataError || err instanceof ForbiddenGlobalError) throw err
    return fail(err instanceof Error ? err.message : String(err), 'bad-storage')
  }
}

function decodeQuoted(s: string, fail: (p: string) => never): string {
  const t = s.trim()
  const q = t[0]
  if (t.length < 2 || (q !== "'" && q !== '"') || t[t.length - 1] !== q) fail('STRING argument is not quoted')
  const body = t.slice(1, -1)
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string
    if (c !== '\\') {
      out += c
      continue
    }
    const n = body[++i]
    switch (n) {
      case 'n':
        out += '\n'
        break
      case 't':
        out += '\t'
        break
      case 'r':
        out += '\r'
        break
      case 'x': {
        const hex = body.slice(i + 1, i + 3)
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) fail('bad \\x escape in STRING')
        out += String.fromCharCode(parseInt(hex, 16))
        i += 2
        break
      }
      case undefined:
        out += '\\'
        break
      default:
        if (n >= '0' && n <= '7') {
          const m = /^[0-7]{1,3}/.exec(body.slice(i)) as RegExpExecArray
          out += String.fromCharCode(parseInt(m[0], 8) & 0xff)
          i += m[0].length - 1
        } else out += n
    }
  }
  return out
}

function decodeRawUnicodeEscape(s: string): string {
  return s.replace(
    /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
    (_m, a: string | undefined, b: string | undefined) => {
      const cp = parseInt((a ?? b) as string, 16)
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd'
    },
  )
}
