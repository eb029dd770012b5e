/** The stream route as the relay registers it (SPEC §5). */
export const STREAM_ROUTE = '/ws/stream/:sessionId/:userId'

/** `/ws/stream/<session>/<user>`, each part percent-encoded. */
export function streamPath (sessionId: string, userId: string): string {
  return `/ws/stream/${encodeURIComponent(sessionId)}/${encodeURIComponent(userId)}`
}

export interface StreamUrlParts {
  /** `ws://host:port` or `wss://host` (a trailing slash is ignored). */
  base: string
  sessionId: string
  userId: string
  /** The publisher's credential. */
  streamKey?: string
  /** An operator's token (SPEC §9). */
  token?: string
}

/** `<base>/ws/stream/<session>/<user>[?stream_key=…][&token=…]`. */
export function streamUrl ({ base, sessionId, userId, streamKey, token }: StreamUrlParts): string {
  const query = [
    ...(streamKey === undefined ? [] : [`stream_key=${encodeURIComponent(streamKey)}`]),
    ...(token === undefined ? [] : [`token=${encodeURIComponent(token)}`]),
  ]
  return `${base.replace(/\/+$/, '')}${streamPath(sessionId, userId)}${query.length === 0 ? '' : `?${query.join('&')}`}`
}

/** The WebSocket origin of a page at `location` (http → ws, https → wss). */
export function wsOrigin (location: { protocol: string, host: string }): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`
}
