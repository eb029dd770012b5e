import Fastify from 'fastify'
import t from 'tap'
import type { AuthConfig } from '@streaming-service/core'
import { restCors } from '../src/cors.js'

/** The REST routes in their own context with CORS_ORIGINS=`origins`, as the control plane registers them. */
async function app (t: { teardown (fn: () => unknown): void }, origins: AuthConfig['corsOrigins'] = '*') {
  const app = Fastify()
  await app.register(async (rest) => {
    await restCors(rest, origins)
    rest.post('/sessions', async () => ({ created: true }))
    rest.get('/sessions/:id', async () => ({ status: 'waiting' }))
    rest.delete('/sessions/:id', async () => ({}))
  })
  app.get('/metrics', async () => 'metrics')
  t.teardown(() => app.close())
  return app
}

const origin = 'http://relay-1:8090'

t.test('a console on another origin may create sessions and read their status', async (t) => {
  const server = await app(t)
  const preflight = await server.inject({
    method: 'OPTIONS', url: '/sessions', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], '*')
  t.equal(preflight.headers['access-control-allow-methods'], 'GET, POST')
  t.equal(preflight.headers['access-control-allow-headers'], 'content-type, authorization')
  const created = await server.inject({ method: 'POST', url: '/sessions', headers: { origin }, payload: {} })
  t.equal(created.headers['access-control-allow-origin'], '*')
  t.equal((await server.inject({ url: '/sessions/x', headers: { origin } })).headers['access-control-allow-origin'], '*')
})

t.test('DELETE is not allowed cross-origin, other routes get no CORS headers, same-origin requests none either', async (t) => {
  const server = await app(t)
  const preflight = await server.inject({ method: 'OPTIONS', url: '/sessions/x', headers: { origin, 'access-control-request-method': 'DELETE' } })
  t.notMatch(preflight.headers['access-control-allow-methods'] ?? '', /DELETE/)
  t.equal((await server.inject({ url: '/metrics', headers: { origin } })).headers['access-control-allow-origin'], undefined)
  t.equal((await server.inject({ url: '/sessions/x' })).headers['access-control-allow-origin'], undefined)
})

t.test('CORS_ORIGINS lists the origins allowed, with DELETE and an API key; any other origin is not allowed', async (t) => {
  const listed = 'https://platform.example'
  const server = await app(t, [listed])
  const preflight = await server.inject({
    method: 'OPTIONS', url: '/sessions/x', headers: { origin: listed, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization' },
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], listed)
  t.match(preflight.headers['access-control-allow-methods'], /DELETE/)
  t.match(preflight.headers['access-control-allow-headers'], /authorization/)
  const other = await server.inject({ url: '/sessions/x', headers: { origin: 'https://evil.example' } })
  t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin gets no CORS header')
  const none = await app(t, [])
  t.equal((await none.inject({ url: '/sessions/x', headers: { origin: listed } })).headers['access-control-allow-origin'], undefined, 'production default: no origin')
})
