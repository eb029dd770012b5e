import type { Backplane, Frame } from './types.js'

/**
 * Cluster signals, sent as `control` frames on a session's channel so they
 * stay ordered with its media. Small JSON: they are rare and never media.
 * - `finished`: the session ended (DELETE); every node closes its sockets with 4410.
 * - `publisher`: a publisher connection with this epoch was admitted; nodes close older ones with 4409.
 *   Its stream starts with the next media frame of the same origin.
 * - `sync-request`: a node that joined the session mid-stream asks the
 *   publisher's node for a `stream-state` frame.
 */
export type ControlMessage =
  | { type: 'finished' }
  | { type: 'publisher', epoch: number }
  | { type: 'sync-request' }

export function controlFrame (message: ControlMessage, seq = 0): Frame {
  return { kind: 'control', seq, payload: Buffer.from(JSON.stringify(message)), sentAt: Date.now() }
}

/** The control message of a frame, or null for anything malformed. */
export function parseControl (frame: Frame): ControlMessage | null {
  try {
    const message = JSON.parse(frame.payload.toString('utf8')) as Partial<ControlMessage> | null
    if (message?.type === 'finished') return { type: 'finished' }
    if (message?.type === 'sync-request') return { type: 'sync-request' }
    if (message?.type === 'publisher' && Number.isSafeInteger(message.epoch)) return { type: 'publisher', epoch: message.epoch! }
  } catch {}
  return null
}

/** Tells every node that the session is finished (returns false if the backplane dropped it). */
export function announceFinished (backplane: Backplane, sessionId: string): boolean {
  return backplane.publish(sessionId, controlFrame({ type: 'finished' }))
}
