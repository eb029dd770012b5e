import type { IncomingHttpHeaders } from 'node:http'

/** What ws accepts as a Sec-WebSocket-Key: 16 bytes, base64. */
const KEY = /^[+/0-9A-Za-z]{22}==$/

/**
 * Why an upgrade request could not become a WebSocket, or undefined. ws
 * answers these itself with a text/html 400; checked before it, they get the
 * SPEC §3 error shape like every other refusal (SPEC §10).
 */
export function handshakeProblem (headers: IncomingHttpHeaders): string | undefined {
  const key = headers['sec-websocket-key']
  if (typeof key !== 'string' || !KEY.test(key.trim())) return 'missing or invalid Sec-WebSocket-Key header'
  const version = headers['sec-websocket-version']
  if (version !== '8' && version !== '13') return 'missing or unsupported Sec-WebSocket-Version header (13)'
  return undefined
}
