import type { FastifyRequest } from 'fastify'

/**
 * Where a client connects for a session: `WS_BASE_URL` when configured,
 * otherwise the host and scheme the request came with. `request.host` and
 * `request.protocol` honour X-Forwarded-Host / X-Forwarded-Proto only from a
 * peer named in TRUST_PROXY (the app's `trustProxy`), taking the value that
 * proxy added (the last); from anyone else they are the Host header and the
 * socket's own scheme, so a client cannot point ws_url elsewhere.
 */
export function wsBaseUrl (request: FastifyRequest, configured: string | undefined): string {
  if (configured !== undefined) return configured
  const proto = request.protocol.toLowerCase()
  const secure = proto === 'https' || proto === 'wss'
  return `${secure ? 'wss' : 'ws'}://${request.host === '' ? 'localhost' : request.host}`
}
