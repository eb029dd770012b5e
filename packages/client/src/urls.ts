export interface StreamUrlParts {
  /** `ws://host:port` or `wss://host`; see `wsOrigin` for a page's own. */
  base: string
  sessionId: string
  userId: string
  /** The publisher's key. */
  streamKey?: string
}

/** `<base>/ws/stream/<session>/<user>[?stream_key=…]` (SPEC §5). */
export function streamUrl ({ base, sessionId, userId, streamKey }: StreamUrlParts): string {
  const path = `${base.replace(/\/+$/, '')}/ws/stream/${encodeURIComponent(sessionId)}/${encodeURIComponent(userId)}`
  return streamKey === undefined ? path : `${path}?stream_key=${encodeURIComponent(streamKey)}`
}

/** The WebSocket origin of a page at `location` (http → ws, https → wss). */
export function wsOrigin (location: { protocol: string, host: string }): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`
}
