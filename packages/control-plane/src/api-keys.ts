import type { FastifyInstance } from 'fastify'
import { ApiKeys, bearerCredential, errorBody, UnauthorizedError, type AuthConfig } from '@streaming-service/core'

/**
 * `token` mode (SPEC §9): every request of this context needs
 * `Authorization: Bearer <one of API_KEYS>`, else 401 `unauthorized` with
 * `WWW-Authenticate: Bearer`. CORS preflights carry no credentials and pass.
 */
export function requireApiKey (app: FastifyInstance, auth: AuthConfig): void {
  if (auth.mode !== 'token') return
  const keys = new ApiKeys(auth.apiKeys)
  app.addHook('onRequest', async (request, reply) => {
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) return
    if (keys.matches(bearerCredential(request.headers.authorization))) return
    return await reply.status(401).header('www-authenticate', 'Bearer realm="streaming-service"').send(errorBody(new UnauthorizedError()))
  })
}
