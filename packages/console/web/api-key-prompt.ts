import { byId } from './dom.js'

const STORAGE_PREFIX = 'streaming-console:api-key:'

/**
 * The REST API key of `AUTH_MODE=token`, asked for only when the API answers
 * 401. It lives in sessionStorage (this tab only, gone when the tab closes)
 * under the API's origin, so a key typed for one API is never sent to
 * another (say, one a link's `?api=` names), and it never goes into a URL.
 */
export class ApiKeyPrompt {
  readonly #storageKey: string
  readonly #form = byId<HTMLFormElement>('api-key-form')
  readonly #input = byId<HTMLInputElement>('api-key')
  readonly #reason = byId('api-key-reason')
  readonly #waiting: Array<(key: string) => void> = []

  constructor (apiBase: string) {
    const origin = new URL(apiBase).origin
    this.#storageKey = STORAGE_PREFIX + origin
    byId('api-key-target').textContent = origin
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault()
      const key = this.#input.value.trim()
      if (key === '') return
      this.#input.value = ''
      sessionStorage.setItem(this.#storageKey, key)
      this.#form.hidden = true
      for (const resolve of this.#waiting.splice(0)) resolve(key)
    })
  }

  get key (): string | undefined {
    return sessionStorage.getItem(this.#storageKey) ?? undefined
  }

  /** Drops `refused` unless another key replaced it meanwhile. */
  forget (refused: string): void {
    if (this.key === refused) sessionStorage.removeItem(this.#storageKey)
  }

  /** Shows the form; resolves with the key the user enters (every caller waiting gets the same one). */
  async ask (reason: string): Promise<string> {
    this.#reason.textContent = reason
    this.#form.hidden = false
    this.#input.focus()
    return await new Promise((resolve) => this.#waiting.push(resolve))
  }
}
