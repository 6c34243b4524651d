/** A minimal external store for state shared across the studio tabs (survives switching sections). */
import { useSyncExternalStore } from 'react'

export interface Store<T> {
  get(): T
  set(next: Partial<T> | ((prev: T) => Partial<T>)): void
  subscribe(fn: () => void): () => void
}

export function createStore<T extends object>(initial: T): Store<T> {
  let state = initial
  const listeners = new Set<() => void>()
  return {
    get: () => state,
    set(next) {
      const patch = typeof next === 'function' ? next(state) : next
      state = { ...state, ...patch }
      for (const fn of listeners) fn()
    },
    subscribe(fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
  }
}

/** Subscribe to a slice; the selector must return a stable value (a field, not a fresh object). */
export function useStore<T extends object, S>(store: Store<T>, select: (s: T) => S): S {
  return useSyncExternalStore(store.subscribe, () => select(store.get()))
}
