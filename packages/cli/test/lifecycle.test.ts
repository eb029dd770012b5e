import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { CloseCode, streamUrl, type CreatedSession } from '@streaming-service/protocol'
import { createTestDatabase, openSocket, tempDir, waitFor, TEST_REDIS_URL } from '@streaming-service/testing'
import { serve } from '../src/index.js'

// The plugins own what they open: closing the Fastify instance of a running
// `api` (database pool or embedded PostgreSQL, backplane and presence
// connections, timers, sockets) leaves no handle behind in this process.

function activeResources (): Map<string, number> {
  const counts = new Map<string, number>()
  for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1)
  return counts
}

/** Resource types with more instances now than in `before`. */
function leftOver (before: Map<string, number>): string[] {
  return [...activeResources()].filter(([name, count]) => count > (before.get(name) ?? 0)).map(([name, count]) => `${name} ×${count - (before.get(name) ?? 0)}`)
}

async function exercise (t: Test, env: Record<string, string>): Promise<void> {
  const before = activeResources()
  const server = await serve('api', { APP_ENV: 'test', HTTP_PORT: '0', APP_HOST: '127.0.0.1', SHUTDOWN_DRAIN: '0ms', LOG_LEVEL: 'silent', ...env })
  const res = await fetch(`${server.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: randomUUID() }) })
  t.equal(res.status, 201)
  const session = await res.json() as CreatedSession
  const base = server.url.replace(/^http/, 'ws')
  const publisher = openSocket(t, streamUrl({ base, sessionId: session.session_id, userId: session.client_id, streamKey: session.stream_key }))
  const operator = openSocket(t, streamUrl({ base, sessionId: session.session_id, userId: 'op-1' }))
  await Promise.all([publisher.opened, operator.opened])
  await publisher.send('hello')
  await operator.waitForMessages(1)
  t.equal((await fetch(`${server.url}/ready`)).status, 200, 'ready with every resource open')

  await server.app.close()
  t.equal((await publisher.closed).code, CloseCode.goingAway, 'sockets are closed going away')
  t.equal((await operator.closed).code, CloseCode.goingAway)
  // Sockets and child handles finish closing asynchronously: give them a moment, then say what is left.
  await waitFor('every handle the app opened to be released', () => leftOver(before).length === 0, 5000).catch(() => {})
  t.same(leftOver(before), [], 'no handle left behind')
}

t.test('api on PostgreSQL with the Redis backplane: closing the app releases every handle', async (t) => {
  const db = await createTestDatabase(t, 'lifecycle')
  await exercise(t, { ...db.env, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `sstest:${randomUUID().slice(0, 8)}:` })
})

t.test('api on the embedded database with the in-process backplane: closing the app releases every handle', async (t) => {
  await exercise(t, { DATA_DIR: join(tempDir(), 'data') })
})
