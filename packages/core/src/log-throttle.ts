/**
 * For warnings that can repeat per frame or per write: `run(key, write)` calls
 * `write` at most once per `everyMs` for a key, passing how many calls it
 * skipped since the last one.
 */
export class LogThrottle {
  readonly #everyMs: number
  readonly #last = new Map<string, { at: number, suppressed: number }>()

  constructor (everyMs: number) {
    this.#everyMs = everyMs
  }

  run (key: string, write: (suppressed: number) => void): void {
    const now = Date.now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last.at < this.#everyMs) {
      last.suppressed++
      return
    }
    write(last?.suppressed ?? 0)
    this.#last.set(key, { at: now, suppressed: 0 })
  }
}
