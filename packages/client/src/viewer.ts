import { ReconnectingSocket, type ConnectionEvents, type ConnectionOptions, type ConnectionStats } from './connection.js'
import { withCredential, type CredentialPlacement, type CredentialSource } from './credentials.js'
import { Emitter } from './emitter.js'

export interface ViewerEvents extends ConnectionEvents {
  /** A connection opened: a stream starts here, so decoders (e.g. a MediaSource) start afresh. */
  stream: { serial: number }
  /** A binary message of the stream. */
  chunk: { data: ArrayBuffer, serial: number }
}

export interface ViewerOptions extends ConnectionOptions {
  /**
   * The operator's token (`AUTH_MODE=token`), added to `url` on every
   * attempt: a string, or a function called before each one, so a viewer that
   * reconnects after its token expired presents a fresh one.
   */
  token?: CredentialSource
  /** `query` (`?token=`, the default: browsers) or `header` (`Authorization: Bearer`; Node with `ws`). */
  credentialIn?: CredentialPlacement
}

/**
 * Watches a session as an operator, reconnecting as the close codes say (at
 * once after streamRestarted; never after 4401 or 4403: a missing, expired or
 * revoked token does not get better by retrying the same one).
 */
export class Viewer {
  readonly connection: ReconnectingSocket
  readonly #events = new Emitter<Pick<ViewerEvents, 'stream' | 'chunk'>>()

  constructor (options: ViewerOptions) {
    const { token, credentialIn, ...connection } = options
    this.connection = new ReconnectingSocket({ ...connection, url: withCredential(options.url, { name: 'token', credential: token, placement: credentialIn }) })
    this.connection.on('open', (event) => this.#events.emit('stream', event))
    this.connection.on('message', ({ data, serial }) => {
      if (typeof data !== 'string') this.#events.emit('chunk', { data, serial })
    })
  }

  get stats (): ConnectionStats { return this.connection.stats }

  on<K extends keyof ViewerEvents> (event: K, listener: (payload: ViewerEvents[K]) => void): () => void {
    if (event === 'stream' || event === 'chunk') return this.#events.on(event, listener as (payload: ViewerEvents['stream' | 'chunk']) => void)
    return this.connection.on(event as keyof ConnectionEvents, listener as (payload: ConnectionEvents[keyof ConnectionEvents]) => void)
  }

  start (): void { this.connection.start() }
  /** A new connection (and stream) at once, or after the backoff delay, e.g. when the decoder failed. */
  reconnect (options: { backoff?: boolean } = {}): void { this.connection.reconnect(options) }
  stop (): void { this.connection.stop() }
}
