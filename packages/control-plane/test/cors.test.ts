import Fastify from 'fastify'
import t from 'tap'
import { allowConsoleOrigins } from '../src/cors.js'

async function app (t: { teardown (fn: () => unknown): void }) {
  const app = Fastify()
  allowConsoleOrigins(app)
  app.post('/sessions', async () => ({ created: true }))
  app.get('/sessions/:id', async () => ({ status: 'waiting' }))
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
  t.equal(preflight.headers['access-control-allow-headers'], 'content-type')
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
