import { ReconnectingSocket, type ConnectionEvents, type ConnectionOptions, type ConnectionStats, type OutgoingData } from './connection.js'
import { withCredential, type CredentialPlacement, type CredentialSource } from './credentials.js'
import { Emitter } from './emitter.js'

export interface StreamSink {
  /** Sends a chunk on the connection the stream was started for; dropped once that connection is gone. */
  send (chunk: OutgoingData): void
}

export interface RunningStream {
  stop (): void
}

/**
 * Starts a fresh stream for one connection. Called on every (re)connection,
 * so each connection's stream begins with its own container init segment
 * (for MediaRecorder: a new recorder).
 */
export type StreamSource = (sink: StreamSink) => RunningStream

export interface PublisherOptions extends ConnectionOptions {
  source: StreamSource
  /** The session's stream key, added to `url` on every attempt (or put it in `url` yourself). */
  streamKey?: CredentialSource
  /** `query` (`?stream_key=`, the default: browsers) or `header` (`Authorization: Bearer`; Node with `ws`). */
  credentialIn?: CredentialPlacement
}

export interface PublisherEvents extends ConnectionEvents {
  /** The source failed to start; the publisher stops. */
  error: Error
}

/** Publishes a stream: one source run per connection, reconnecting as the close codes say. */
export class Publisher {
  readonly connection: ReconnectingSocket
  readonly #source: StreamSource
  readonly #errors = new Emitter<{ error: Error }>()
  #stream: RunningStream | undefined

  constructor (options: PublisherOptions) {
    const { source, streamKey, credentialIn, ...connection } = options
    this.#source = source
    this.connection = new ReconnectingSocket({ ...connection, url: withCredential(options.url, { name: 'stream_key', credential: streamKey, placement: credentialIn }) })
    this.connection.on('open', ({ serial }) => this.#startStream(serial))
    this.connection.on('close', () => this.#stopStream())
  }

  get stats (): ConnectionStats { return this.connection.stats }

  on<K extends keyof PublisherEvents> (event: K, listener: (payload: PublisherEvents[K]) => void): () => void {
    if (event === 'error') return this.#errors.on('error', listener as (payload: Error) => void)
    return this.connection.on(event as keyof ConnectionEvents, listener as (payload: ConnectionEvents[keyof ConnectionEvents]) => void)
  }

  start (): void { this.connection.start() }
  /** A new connection, and so a new stream (the server replaces the old one). */
  reconnect (): void { this.connection.reconnect() }
  stop (): void { this.connection.stop() }

  #startStream (serial: number): void {
    this.#stopStream()
    const sink: StreamSink = {
      send: (chunk) => {
        if (this.connection.serial === serial) this.connection.send(chunk)
      },
    }
    try {
      this.#stream = this.#source(sink)
    } catch (err) {
      this.connection.stop(1000, 'source failed')
      this.#errors.emit('error', err instanceof Error ? err : new Error(String(err)))
    }
  }

  #stopStream (): void {
    const stream = this.#stream
    this.#stream = undefined
    stream?.stop()
  }
}
