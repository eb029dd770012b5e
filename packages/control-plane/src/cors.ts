import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import type { AuthConfig } from '@streaming-service/core'

/**
 * CORS_ORIGINS for the REST API (SPEC §9): the listed origins may call it
 * from a browser, with an API key; `*` (the default outside production) lets
 * any page create sessions and read them, as the web console served by relays
 * on other origins does, but not DELETE: a foreign page must not end sessions
 * through a browser that reaches an internal control plane. Register it in
 * the REST routes' context: other routes get no CORS headers.
 */
export async function restCors (app: FastifyInstance, origins: AuthConfig['corsOrigins']): Promise<void> {
  const any = origins === '*'
  await app.register(cors, {
    // No Origin header (same origin, or not a browser): no CORS headers at all.
    origin: (origin, allow) => { allow(null, origin === undefined ? false : any ? '*' : origins.includes(origin)) },
    methods: any ? ['GET', 'POST'] : ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization'],
    maxAge: 600,
    strictPreflight: false,
    hideOptionsRoute: true,
  })
}
