/** A tiny typed emitter whose `on` returns its own dispose function. */
export class Emitter<Events extends Record<string, unknown>> {
  private listeners = new Map<keyof Events, Set<(e: never) => void>>()

  on<K extends keyof Events>(event: K, listener: (e: Events[K]) => void): () => void {
    let set = this.listeners.get(event)
    if (!set) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(listener as (e: never) => void)
    return () => {
      set.delete(listener as (e: never) => void)
    }
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const l of [...set]) {
      try {
        ;(l as (e: Events[K]) => void)(payload)
      } catch {
        // A failing listener must not break the library operation that emitted.
      }
    }
  }

  clear(): void {
    this.listeners.clear()
  }
}

/** Serialises async operations (scan, add, rename, delete) so they never interleave on the index. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn)
    this.tail = next.catch(() => undefined)
    return next
  }
}
