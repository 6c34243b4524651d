import type { DType, TensorInfo } from '../safetensors'
import { ProbeError } from './types'

export interface KeyEntry {
  shape: number[]
  dtype: DType
}

/** Read-only view of tensor names and shapes (a safetensors header), optionally under a prefix. */
export class KeyView {
  private constructor(
    private readonly all: ReadonlyMap<string, KeyEntry>,
    readonly prefix: string,
  ) {}

  static of(tensors: ReadonlyMap<string, KeyEntry | TensorInfo>): KeyView {
    return new KeyView(tensors, '')
  }

  static fromShapes(shapes: Record<string, number[]>, dtype: DType = 'F16'): KeyView {
    return new KeyView(new Map(Object.entries(shapes).map(([k, shape]) => [k, { shape, dtype }])), '')
  }

  /** A view where `name` means `prefix + name`. */
  under(prefix: string): KeyView {
    return new KeyView(this.all, this.prefix + prefix)
  }

  has(name: string): boolean {
    return this.all.has(this.prefix + name)
  }

  shape(name: string): number[] | undefined {
    return this.all.get(this.prefix + name)?.shape
  }

  /** Dimension `i` of a tensor that must exist (a readable error otherwise). */
  dim(name: string, i: number): number {
    const s = this.shape(name)
    const d = s?.[i]
    if (d === undefined) {
      const why = s ? `has shape ${JSON.stringify(s)}` : 'is missing'
      throw new ProbeError(`expected tensor "${this.prefix + name}" ${why}`, 'missing-tensor')
    }
    return d
  }

  /** Names (without the view prefix) of every tensor under the view. */
  *names(): Generator<string> {
    for (const k of this.all.keys()) if (k.startsWith(this.prefix)) yield k.slice(this.prefix.length)
  }

  hasAny(prefix = ''): boolean {
    for (const k of this.all.keys()) if (k.startsWith(this.prefix + prefix)) return true
    return false
  }

  find(pred: (name: string) => boolean): string | undefined {
    for (const n of this.names()) if (pred(n)) return n
    return undefined
  }

  /** Sorted distinct integers captured by the first group of `re` over the view's names. */
  indices(re: RegExp): number[] {
    const set = new Set<number>()
    for (const n of this.names()) {
      const m = re.exec(n)
      if (m?.[1] !== undefined) set.add(Number(m[1]))
    }
    return [...set].sort((a, b) => a - b)
  }

  count(re: RegExp): number {
    return this.indices(re).length
  }

  get size(): number {
    let n = 0
    for (const _ of this.names()) n++
    return n
  }

  /** The dtype holding the most tensors. */
  dominantDtype(): DType | undefined {
    const counts = new Map<DType, number>()
    for (const [k, v] of this.all)
      if (k.startsWith(this.prefix)) counts.set(v.dtype, (counts.get(v.dtype) ?? 0) + 1)
    let best: DType | undefined
    let n = 0
    for (const [d, c] of counts) if (c > n) [best, n] = [d, c]
    return best
  }
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
