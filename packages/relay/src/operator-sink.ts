import WebSocket from 'ws'
import { CloseCode } from './close-codes.js'

export interface OperatorSinkOptions {
  /** Unsent bytes (ws bufferedAmount) above which messages are dropped for this operator. */
  maxBufferedBytes: number
  /** How long an operator may stay over the bound before it is cut off with 4429. */
  maxLagMs: number
  /** After the 4429 close frame, how long to wait for the peer before destroying the socket. */
  closeGraceMs?: number
  onDrop: (bytes: number) => void
  onSent: (bytes: number) => void
  onTooSlow: () => void
}

/**
 * One operator's outgoing side. The payload buffer is shared by every sink of
 * a session (never copied here); what this operator cannot take is dropped
 * and counted, so a slow operator never slows the publisher or the others and
 * its memory stays bounded by `maxBufferedBytes` plus one message.
 */
export class OperatorSink {
  readonly socket: WebSocket
  readonly #options: OperatorSinkOptions
  #behindSince: number | undefined
  /** Set when this sink closed the socket with 4429 (the peer may never echo it). */
  cutOff = false

  constructor (socket: WebSocket, options: OperatorSinkOptions) {
    this.socket = socket
    this.#options = options
  }

  /** Whether the message went to the socket (false: dropped or closed). */
  send (payload: Buffer, binary: boolean): boolean {
    const socket = this.socket
    if (socket.readyState !== WebSocket.OPEN) return false
    if (socket.bufferedAmount > this.#options.maxBufferedBytes) {
      this.#options.onDrop(payload.length)
      const now = Date.now()
      this.#behindSince ??= now
      if (now - this.#behindSince > this.#options.maxLagMs) this.#cutOff()
      return false
    }
    this.#behindSince = undefined
    socket.send(payload, { binary })
    this.#options.onSent(payload.length)
    return true
  }

  #cutOff (): void {
    if (this.cutOff) return
    this.cutOff = true
    this.#options.onTooSlow()
    this.socket.close(CloseCode.tooSlow, 'too slow: could not keep up with the stream')
    // A stalled peer never reads the close frame; don't keep its buffer alive.
    const timer = setTimeout(() => this.socket.terminate(), this.#options.closeGraceMs ?? 5000)
    timer.unref()
    this.socket.once('close', () => clearTimeout(timer))
  }
}
