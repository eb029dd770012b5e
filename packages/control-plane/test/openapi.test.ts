import t from 'tap'
import { createTestDatabase, startService } from '@streaming-service/testing'

// SPEC §9: /openapi.json is an OpenAPI 3.1 document generated from the route
// schemas, listing every route of the process, with the security schemes.

t.test('/openapi.json is OpenAPI 3.1 and lists every route of an api process (the stream route and the console too), with its security schemes', async (t) => {
  const db = await createTestDatabase(t, 'openapi')
  const service = await startService(t, ['api'], db.env)
  const res = await fetch(`${service.url}/openapi.json`)
  t.equal(res.status, 200)
  const doc = await res.json() as { openapi: string, paths: Record<string, Record<string, { tags?: string[], requestBody?: unknown }>>, components: { securitySchemes: Record<string, unknown> } }
  t.equal(doc.openapi, '3.1.0')
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`)).sort()
  t.same(operations, [
    'GET /',
    'GET /console/{asset}',
    'DELETE /sessions/{id}',
    'DELETE /sessions/{id}/operators/{user_id}',
    'GET /health',
    'GET /metrics',
    'GET /ready',
    'GET /sessions',
    'GET /sessions/{id}',
    'GET /sessions/{id}/events',
    'GET /sessions/{id}/operators',
    'GET /ws/stream/{sessionId}/{userId}',
    'POST /sessions',
    'POST /sessions/{id}/tokens',
  ].sort(), 'every API route, and nothing else')
  t.ok(doc.paths['/sessions']!.post!.requestBody, 'the create body comes from the validating schema')
  t.same(Object.keys(doc.components.securitySchemes).sort(), ['apiKey', 'operatorToken'])
  const docs = await fetch(`${service.url}/docs/`)
  t.equal(docs.status, 200)
  t.match(await docs.text(), /swagger-ui/i, '/docs serves the rendered document')
})
