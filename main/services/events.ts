import type { EventName, Events } from '../../preload/contract'

export type Dispose = () => void
export type AnyEvent = { [E in EventName]: { name: E; payload: Events[E] } }[EventName]

/** The typed bus every service emits on; each transport subscribes once and forwards to its clients. */
export class EventBus {
  private readonly listeners = new Set<(event: AnyEvent) => void>()

  emit<E extends EventName>(name: E, payload: Events[E]): void {
    const event = { name, payload } as AnyEvent
    for (const fn of [...this.listeners]) {
      try {
        fn(event)
      } catch (err) {
        console.error(`event listener for ${name} failed:`, err)
      }
    }
  }

  subscribe(fn: (event: AnyEvent) => void): Dispose {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
}
