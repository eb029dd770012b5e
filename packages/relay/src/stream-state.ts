/**
 * A `stream-state` backplane frame: what a relay joining a session mid-stream
 * needs to follow it — the bytes that, pushed into a fresh GopCache, put it
 * where the publisher's relay is (init segment + current group, or the whole
 * stream while it is still short), or that the stream is opaque.
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
