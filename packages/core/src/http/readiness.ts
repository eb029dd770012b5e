export type ReadinessCheck = () => Promise<void>

export interface ReadinessReport {
  ready: boolean
  /** Each check's name → "ok" or why it failed. */
  checks: Record<string, string>
}

/**
 * What `/ready` answers: every registered check (database, migrations,
 * backplane…) must pass within the timeout, and the node must not be
 * draining. Draining is one-way: a node that started shutting down never
 * becomes ready again.
 */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>()
  #draining = false

  add (name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check)
  }

  startDraining (): void {
    this.#draining = true
  }

  get draining (): boolean {
    return this.#draining
  }

  async evaluate (timeoutMs = 2000): Promise<ReadinessReport> {
    const checks: Record<string, string> = { draining: this.#draining ? 'node is shutting down' : 'ok' }
    await Promise.all([...this.#checks].map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      })
      try {
        await Promise.race([check(), timeout])
        checks[name] = 'ok'
      } catch (err) {
        checks[name] = (err as Error).message
      } finally {
        clearTimeout(timer)
      }
    }))
    return { ready: Object.values(checks).every((result) => result === 'ok'), checks }
  }
}
