import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { openSocket, startService, tempDir } from '@streaming-service/testing'

// SPEC §10: the embedded default is as correct under concurrency as
// PostgreSQL. `api` with no database variables (what `pnpm start` runs),
// real clients arriving at once. Measured before the fix: joins refused with
// 1011 or 4404 for an existing session, admitted operators missing from the
// list, hung sockets, or the process dying on a corrupted protocol stream.

interface Created { session_id: string, client_id: string, stream_key: string, ws_url: string, status: string }

/** Fails the test with `what` instead of waiting for tap's timeout (what the unfixed service did). */
async function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

async function post (url: string, clientId: string): Promise<{ status: number, body: Created }> {
  const res = await fetch(`${url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: clientId }) })
  return { status: res.status, body: await res.json() as Created }
}

t.test('api on the embedded database: 20 operators joining at once are all admitted and listed', async (t) => {
  const service = await startService(t, ['api'], { DATA_DIR: join(tempDir(), 'data'), SESSION_MAX_OPERATORS: '20', SHUTDOWN_DRAIN: '0ms' })
  for (let round = 1; round <= 3; round++) {
    const { status, body: session } = await post(service.url, randomUUID())
    t.equal(status, 201)
    const base = session.ws_url.slice(0, session.ws_url.lastIndexOf('/'))
    const users = Array.from({ length: 20 }, (_, i) => `op-${round}-${i}`)
    const sockets = users.map((user) => openSocket(t, `${base}/${user}`))
    // A refused join is upgraded, then closed with its code: open alone proves nothing.
    const outcomes = await within(20_000, 'every socket opening or closing', Promise.allSettled(sockets.map(async (socket) => await socket.opened)))
    t.same(outcomes.filter((outcome) => outcome.status === 'rejected').length, 0, `round ${round}: 20 upgrades`)

    const listed = await (await fetch(`${service.url}/sessions/${session.session_id}/operators`)).json() as { operators: Array<{ user_id: string, online: boolean }> }
    t.same(listed.operators.map((operator) => operator.user_id).sort(), [...users].sort(), 'every operator registered, once')
    t.same(listed.operators.filter((operator) => !operator.online).map((operator) => operator.user_id), [], 'and online: admitted')
    t.match(await (await fetch(`${service.url}/sessions/${session.session_id}`)).json(), { operators_count: 20, status: 'waiting' })
    const closes = await within(20_000, 'every socket closing', Promise.all(sockets.map(async (socket) => (await socket.close(1000)).code)))
    t.same(closes, users.map(() => 1000), 'each socket stayed open until the client closed it (no 1011, 4404 or 1006)')
  }
  t.equal(service.child.exitCode, null, 'the process is alive')
  t.same(service.logs.filter((line) => Number(line.level) >= 50).map((line) => line.msg), [], 'nothing logged as an error')
  t.same(await service.stop(), { code: 0, signal: null }, 'and stops cleanly')
})

t.test('api on the embedded database: 50 parallel creates, then 50 parallel deletes, all with correct results', async (t) => {
  const service = await startService(t, ['api'], { DATA_DIR: join(tempDir(), 'data'), SHUTDOWN_DRAIN: '0ms' })
  const clients = Array.from({ length: 50 }, () => randomUUID())
  const created = await within(30_000, '50 POST /sessions', Promise.all(clients.map(async (clientId) => await post(service.url, clientId))))
  t.same(created.map((c) => c.status), clients.map(() => 201), 'every POST is 201')
  t.same(created.map((c) => c.body.client_id), clients, 'each with its own client_id')
  t.equal(new Set(created.map((c) => c.body.session_id)).size, 50, '50 distinct sessions')
  t.equal(new Set(created.map((c) => c.body.stream_key)).size, 50, '50 distinct stream keys')

  const ids = created.map((c) => c.body.session_id)
  const deleted = await within(30_000, '50 DELETE /sessions/:id', Promise.all(ids.map(async (id) => (await fetch(`${service.url}/sessions/${id}`, { method: 'DELETE' })).status)))
  t.same(deleted, ids.map(() => 204), 'every DELETE is 204')
  const states = await Promise.all(ids.map(async (id) => await (await fetch(`${service.url}/sessions/${id}`)).json() as { session_id: string, status: string }))
  t.same(states.map((s) => [s.session_id, s.status]), ids.map((id) => [id, 'finished']), 'each one finished, read back in parallel')
  t.same(service.logs.filter((line) => Number(line.level) >= 50).map((line) => line.msg), [], 'nothing logged as an error')
  t.same(await service.stop(), { code: 0, signal: null })
})
