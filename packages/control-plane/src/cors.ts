import type { FastifyInstance } from 'fastify'

/**
 * Lets the web console, served by relays on other origins in a split
 * deployment, create sessions and poll their status (`/sessions…`, GET and
 * POST, no credentials). DELETE stays same-origin, so a foreign page cannot
 * end sessions through a browser that reaches an internal control plane.
 */
export function allowConsoleOrigins (app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.origin === undefined || !request.url.startsWith('/sessions')) return
    reply.header('access-control-allow-origin', '*')
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      return await reply
        .status(204)
        .header('access-control-allow-methods', 'GET, POST')
        .header('access-control-allow-headers', 'content-type')
        .header('access-control-max-age', '600')
        .send()
    }
  })
}
