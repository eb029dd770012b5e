import type { Backplane, Frame } from '@streaming-service/core'

/**
 * The relay's wire format on a session's backplane channel. The backplane
 * carries kinds as opaque bytes; their meaning is defined here and nowhere else.
 *
 * - `mediaBinary`, `mediaText`: a publisher's message, as is, with its WebSocket type;
 * - `signal`: a small JSON cluster signal (below), ordered with the media on the same channel;
 * - `streamState`: the late-join state of a stream, for a node that starts following it mid-way.
 */
export const FrameKind = { mediaBinary: 1, mediaText: 2, signal: 3, streamState: 4 } as const

/**
 * - `finished`: the session ended (DELETE); every node closes its sockets of it.
 * - `publisher`: a publisher connection with this epoch was admitted; nodes
 *   close older ones. Its stream starts with the next media frame of the same origin.
 * - `sync-request`: a node that follows the session mid-stream asks the
 *   publisher's node for a `streamState` frame.
 * - `revoked`: operator `userId` was revoked; every node closes its sockets (4403).
 */
export type Signal =
  | { type: 'finished' }
  | { type: 'publisher', epoch: number }
  | { type: 'sync-request' }
  | { type: 'revoked', userId: string }

export function signalFrame (signal: Signal, seq = 0): Frame {
  return { kind: FrameKind.signal, seq, payload: Buffer.from(JSON.stringify(signal)), sentAt: Date.now() }
}

/** The signal of a frame, or null for anything malformed. */
export function parseSignal (frame: Frame): Signal | null {
  try {
    const signal = JSON.parse(frame.payload.toString('utf8')) as Partial<Signal> | null
    if (signal?.type === 'finished') return { type: 'finished' }
    if (signal?.type === 'sync-request') return { type: 'sync-request' }
    if (signal?.type === 'publisher' && Number.isSafeInteger(signal.epoch)) return { type: 'publisher', epoch: signal.epoch! }
    if (signal?.type === 'revoked' && typeof signal.userId === 'string') return { type: 'revoked', userId: signal.userId }
  } catch {}
  return null
}

/** Tells every node that the session is finished (false if the backplane dropped it). For processes without a relay. */
export function announceFinished (backplane: Backplane, sessionId: string): boolean {
  return backplane.publish(sessionId, signalFrame({ type: 'finished' }))
}

/** Tells every node to close operator `userId`'s sockets of the session. For processes without a relay. */
export function announceRevoked (backplane: Backplane, sessionId: string, userId: string): boolean {
  return backplane.publish(sessionId, signalFrame({ type: 'revoked', userId }))
}

/**
 * A `streamState` payload: the bytes that, pushed into a fresh GopCache, put
 * a node where the publisher's node is (init segment + current group, or the
 * whole stream while it is still short), or that the stream is opaque.
 *
 *   uint32 BE  header length n
 *   n bytes    JSON {"epoch": number, "opaque": boolean, "lengths": number[]}
 *   ...        the parts, back to back
 */
export interface StreamState {
  /** The publisher epoch the stream belongs to. */
  epoch: number
  opaque: boolean
  parts: Buffer[]
}

export function encodeStreamState (state: StreamState): Buffer {
  const header = Buffer.from(JSON.stringify({ epoch: state.epoch, opaque: state.opaque, lengths: state.parts.map((part) => part.length) }))
  const length = Buffer.alloc(4)
  length.writeUInt32BE(header.length)
  return Buffer.concat([length, header, ...state.parts])
}

/** The state in a frame's payload (parts are views into it), or null when malformed. */
export function decodeStreamState (payload: Buffer): StreamState | null {
  try {
    if (payload.length < 4) return null
    const headerEnd = 4 + payload.readUInt32BE(0)
    const header = JSON.parse(payload.toString('utf8', 4, headerEnd)) as { epoch?: unknown, opaque?: unknown, lengths?: unknown }
    const { epoch, opaque, lengths } = header
    if (!Number.isSafeInteger(epoch) || typeof opaque !== 'boolean' || !Array.isArray(lengths)) return null
    const parts: Buffer[] = []
    let at = headerEnd
    for (const length of lengths) {
      if (!Number.isSafeInteger(length) || (length as number) < 0 || at + (length as number) > payload.length) return null
      parts.push(payload.subarray(at, at + (length as number)))
      at += length as number
    }
    return at === payload.length ? { epoch: epoch as number, opaque, parts } : null
  } catch {
    return null
  }
}
