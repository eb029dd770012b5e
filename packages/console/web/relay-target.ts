import { byId } from './dom.js'

/**
 * Where the page's WebSockets go: the page's own origin, unless the user
 * types another relay into the field or confirms the one a link suggests
 * (`?ws=`). A parameter alone never sends a publisher's media, or a token
 * the console minted, anywhere else.
 */
export class RelayTarget {
  readonly #input = byId<HTMLInputElement>('relay-url')

  constructor (own: string, suggested: string | undefined) {
    this.#input.value = own
    const note = byId('relay-suggestion')
    if (suggested === undefined || suggested.replace(/\/+$/, '') === own) return
    byId('relay-suggested').textContent = suggested
    note.hidden = false
    byId('relay-use').addEventListener('click', () => {
      this.#input.value = suggested
      note.hidden = true
    })
  }

  /** The relay's WebSocket base as the field says; throws for anything but ws:// or wss://. */
  get base (): string {
    let url: URL
    try {
      url = new URL(this.#input.value.trim())
    } catch {
      throw new Error(`relay "${this.#input.value}" is not a URL (ws://host:port or wss://host)`)
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('the relay must be a ws:// or wss:// address')
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
  }
}
