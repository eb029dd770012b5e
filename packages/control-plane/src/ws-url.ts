import type { FastifyRequest } from 'fastify'

function firstHeader (value: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(value) ? value[0] : value
  const first = raw?.split(',')[0]?.trim()
  return first === '' ? undefined : first
}

/**
 * Where a client connects for a session: `WS_BASE_URL` when configured,
 * otherwise the host the request came to, honouring the load balancer's
 * X-Forwarded-Proto / X-Forwarded-Host.
 */
export function wsBaseUrl (request: FastifyRequest, configured: string | undefined): string {
  if (configured !== undefined) return configured
  const proto = firstHeader(request.headers['x-forwarded-proto']) ?? request.protocol
  const host = firstHeader(request.headers['x-forwarded-host']) ?? request.headers.host ?? 'localhost'
  const secure = proto === 'https' || proto === 'wss'
  return `${secure ? 'wss' : 'ws'}://${host}`
}
