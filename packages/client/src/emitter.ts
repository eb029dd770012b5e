type Listener<T> = (event: T) => void

/** A typed event emitter that runs in browsers and Node alike (no `node:events`). */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>()

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events> (event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, set = new Set())
    set.add(listener as Listener<never>)
    return () => { set.delete(listener as Listener<never>) }
  }

  emit<K extends keyof Events> (event: K, payload: Events[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      // A failing listener must not break the connection logic that emitted.
      try { (listener as Listener<Events[K]>)(payload) } catch (err) { reportListenerError(err) }
    }
  }
}

function reportListenerError (err: unknown): void {
  setTimeout(() => { throw err }, 0)
}
