import type { Socket } from 'node:net'
import * as ws from 'ws'
import type WebSocket from 'ws'

/** Up to this size a message is framed into one buffer (one copy per node); larger ones go out as header + payload. */
const ONE_BUFFER_MAX = 256 * 1024
/**
 * From this many sockets on, copying the payload once behind its header pays:
 * each socket then takes one buffer (a plain write) instead of two (cork,
 * writev). Measured with 16 KB to 200 sockets: -13 % CPU; with 8 KB to 2
 * sockets the copy cost more than it saved.
 */
const ONE_BUFFER_MIN_SOCKETS = 3
/** ws's Sender state when nothing is queued inside it (lib/sender.js: DEFAULT). */
const SENDER_IDLE = 0

interface FrameOptions { fin: boolean, opcode: number, mask: boolean, readOnly: boolean, rsv1: boolean }
/** ws's own framing (not in @types/ws). */
const { Sender } = ws as unknown as { Sender: { frame: (data: Buffer, options: FrameOptions) => Buffer[] } }

/** What ws keeps inside a WebSocket; read only to write a ready frame straight to its TCP socket. */
interface WebSocketInternals {
  _socket?: Socket
  _sender?: { _state: number, _queue: unknown[] }
}

/**
 * One publisher message on its way to this node's operators, framed for
 * WebSocket once however many operators take it: `ws.send` would build a
 * header, cork, write twice and uncork per operator. Server frames are not
 * masked, so the same bytes suit every socket. Built on first use (a message
 * no operator takes is never framed).
 */
export class OutgoingMessage {
  readonly payload: Buffer
  readonly binary: boolean
  readonly #sockets: number
  #frame: Buffer[] | undefined

  /** `sockets`: how many sockets it is about to be written to. */
  constructor (payload: Buffer, binary: boolean, sockets: number) {
    this.payload = payload
    this.binary = binary
    this.#sockets = sockets
  }

  /** The whole WebSocket frame: one buffer, or header and payload. */
  get frame (): Buffer[] {
    if (this.#frame === undefined) {
      // `[header, payload]`, or `[header]` alone for an empty message.
      const parts = Sender.frame(this.payload, { fin: true, opcode: this.binary ? 2 : 1, mask: false, readOnly: false, rsv1: false })
      const oneBuffer = this.#sockets >= ONE_BUFFER_MIN_SOCKETS && this.payload.length <= ONE_BUFFER_MAX
      this.#frame = oneBuffer ? [Buffer.concat(parts)] : parts
    }
    return this.#frame
  }
}

/**
 * Sends `message`: its frame written straight to the TCP socket when the
 * WebSocket is open and ws has nothing queued for it (always, with
 * compression off, as on the relay), else through `ws.send` (which, for a
 * closing socket, sends nothing). Either way the bytes count in
 * `socket.bufferedAmount`, which the operator's bound reads.
 */
export function writeMessage (socket: WebSocket, message: OutgoingMessage): void {
  const { _socket: tcp, _sender: sender } = socket as unknown as WebSocketInternals
  if (socket.readyState !== socket.OPEN || tcp === undefined || sender === undefined ||
    sender._state !== SENDER_IDLE || sender._queue.length > 0 || !tcp.writable) {
    socket.send(message.payload, { binary: message.binary })
    return
  }
  const frame = message.frame
  if (frame.length === 1) {
    tcp.write(frame[0]!)
    return
  }
  tcp.cork()
  for (const part of frame) tcp.write(part)
  tcp.uncork()
}
