import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/**
 * SPEC §9: an OpenAPI 3.1 document at /openapi.json, generated from the route
 * schemas that validate requests (registered before every route, so it sees
 * them all: a plugin without encapsulation), rendered at /docs from the swagger-ui assets this package ships
 * (no CDN). Both stay open in `token` mode: the document holds no secret.
 */
export const openApiPlugin = fp(async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'streaming-service',
        version: '1',
        description: 'PSDS live-stream sessions: REST control plane and the WebSocket stream route. ' +
          // Markdown in swagger-ui: code spans keep `<API key>` from being read as an HTML tag.
          'In AUTH_MODE=token, `/sessions…` needs `Authorization: Bearer <API key>`; operators present a token (`?token=` or `Bearer`) on the stream route.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS (AUTH_MODE=token)' },
          operatorToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An operator token: ?token= or Authorization: Bearer on the stream route' },
        },
      },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'sessions', description: 'Session lifecycle (SPEC §3)' },
        { name: 'operators', description: 'Operators, revocation and tokens (SPEC §9)' },
        { name: 'stream', description: 'The WebSocket stream route (SPEC §5)' },
        { name: 'operations', description: 'Probes and metrics' },
        { name: 'console', description: 'The web console' },
      ],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'ss-openapi', fastify: '5.x' })
