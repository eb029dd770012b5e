import { randomUUID } from 'node:crypto'
import t from 'tap'
import { connect, externalTarget, findDir, loadConfig, migrateUp, OperatorStore, SessionEventLog, SessionStore, type Sql } from '@streaming-service/core'
import { createTestDatabase, freePort } from '@streaming-service/testing'
import { Admission, type OperatorTicket, type PublisherTicket } from '../src/admission.js'

interface Teardown { teardown (fn: () => unknown): void }

const stores = (sql: Sql) => ({ sessions: new SessionStore(sql), operators: new OperatorStore(sql), events: new SessionEventLog(sql) })
/** The credentials of a connection that presents `streamKey` (or nothing). */
const key = (streamKey: string | undefined) => streamKey === undefined ? {} : { streamKey }

interface SessionRow { status: string, started_at: Date | null, publisher_epoch: string }

// One database for the file; every test creates its own sessions in it.
const db = await createTestDatabase(t, 'admission')
const target = externalTarget(loadConfig(db.env).db)
await migrateUp(target, findDir('migrations'))

/** A pool the size a relay would use, closed at the test's teardown. */
function pool (t: Teardown, max = 3): Sql {
  const sql = connect(target, { max })
  t.teardown(() => sql.end({ timeout: 1 }))
  return sql
}

async function createSession (sql: Sql): Promise<{ id: string, clientId: string, streamKey: string }> {
  const clientId = randomUUID()
  const { session, streamKey } = await new SessionStore(sql).create(clientId)
  return { id: session.id, clientId, streamKey }
}

/** The session's status and publisher epoch, read directly. */
async function state (sql: Sql, id: string): Promise<{ status: string, epoch: number }> {
  const row = await sessionRow(sql, id)
  return { status: row.status, epoch: Number(row.publisher_epoch) }
}

async function sessionRow (sql: Sql, id: string): Promise<SessionRow> {
  const [row] = await sql<SessionRow[]>`select status, started_at, publisher_epoch from streaming_sessions where id = ${id}`
  return row!
}

t.test('the publisher with the right key activates the session and gets a new epoch each time', async (t) => {
  const sql = pool(t)
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  const session = await createSession(sql)
  t.same(await state(sql, session.id), { status: 'waiting', epoch: 0 })

  const first = await admission.admit(session.id, session.clientId, key(session.streamKey))
  t.same(first, { role: 'publisher', sessionId: session.id, clientId: session.clientId, epoch: 1 })
  const afterFirst = await sessionRow(sql, session.id)
  t.equal(afterFirst.status, 'active')
  t.ok(afterFirst.started_at instanceof Date, 'started_at is set')

  const second = await admission.admit(session.id, session.clientId, key(session.streamKey))
  t.equal((second as PublisherTicket).epoch, 2)
  const afterSecond = await sessionRow(sql, session.id)
  t.equal(afterSecond.started_at?.getTime(), afterFirst.started_at?.getTime(), 'started_at is the first activation')
  t.same(await state(sql, session.id), { status: 'active', epoch: 2 })

  const upper = await admission.admit(session.id, session.clientId.toUpperCase(), key(session.streamKey))
  t.equal(upper.role, 'publisher', 'an upper-case client id in the URL is still the publisher')
  t.equal((upper as PublisherTicket).epoch, 3)
})

t.test('a wrong or missing stream key is refused and changes nothing', async (t) => {
  const sql = pool(t)
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  const session = await createSession(sql)

  await t.rejects(admission.admit(session.id, session.clientId, key('not-the-key')), { code: 'SS_STREAM_KEY_INVALID', closeCode: 4401 })
  await t.rejects(admission.admit(session.id, session.clientId, key(undefined)), { code: 'SS_STREAM_KEY_INVALID' })
  await t.rejects(admission.admit(session.id, session.clientId, key('')), { code: 'SS_STREAM_KEY_INVALID' })
  const row = await sessionRow(sql, session.id)
  t.equal(row.status, 'waiting')
  t.equal(row.started_at, null)
  t.same(await state(sql, session.id), { status: 'waiting', epoch: 0 })
})

t.test('an operator is registered on its first connection and keeps its joined_at', async (t) => {
  const sql = pool(t)
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  const session = await createSession(sql)

  const first = await admission.admit(session.id, 'op-1', key(undefined)) as OperatorTicket
  t.match(first, { role: 'operator', sessionId: session.id, clientId: session.clientId, userId: 'op-1', firstJoin: true })
  t.ok(first.joinedAt instanceof Date)
  const rows = await sql<Array<{ user_id: string, joined_at: Date }>>`select user_id, joined_at from session_operators where session_id = ${session.id}`
  t.same(rows.map((row) => row.user_id), ['op-1'])
  t.equal(rows[0]!.joined_at.getTime(), first.joinedAt.getTime())

  const second = await admission.admit(session.id, 'op-1', key('a stream key is ignored for operators')) as OperatorTicket
  t.equal(second.firstJoin, false)
  t.equal(second.joinedAt.getTime(), first.joinedAt.getTime(), 'joined_at is unchanged')
  t.equal((await sessionRow(sql, session.id)).status, 'waiting', 'operators do not change the status')
})

t.test('a new operator beyond the limit is refused; registered ones are always admitted', async (t) => {
  const sql = pool(t)
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  const session = await createSession(sql)

  for (const user of ['op-a', 'op-b', 'op-c']) {
    t.equal((await admission.admit(session.id, user, key(undefined)) as OperatorTicket).firstJoin, true, `${user} admitted`)
  }
  await t.rejects(admission.admit(session.id, 'op-d', key(undefined)), { code: 'SS_TOO_MANY_OPERATORS', closeCode: 4409 })
  for (const user of ['op-a', 'op-b', 'op-c']) {
    t.equal((await admission.admit(session.id, user, key(undefined)) as OperatorTicket).firstJoin, false, `${user} readmitted`)
  }
  t.equal((await admission.admit(session.id, session.clientId, key(session.streamKey))).role, 'publisher', 'the publisher does not count')
  const [{ n }] = await sql<[{ n: number }]>`select count(*)::int as n from session_operators where session_id = ${session.id}`
  t.equal(n, 3)
})

t.test('the operator limit holds under concurrent joins through three separate pools', async (t) => {
  const relays = [pool(t), pool(t), pool(t)].map((sql) => new Admission(stores(sql), { maxOperators: 5, authMode: 'open' }))
  const sql = pool(t, 1)
  // A few rounds: without the row lock the limit is exceeded in most rounds, not all.
  for (let round = 1; round <= 3; round++) {
    const session = await createSession(sql)
    const users = Array.from({ length: 20 }, (_, i) => `op-${i}`)
    const outcomes = await Promise.allSettled(users.map((user, i) => relays[i % 3]!.admit(session.id, user, key(undefined))))
    const admitted = outcomes.flatMap((outcome) => outcome.status === 'fulfilled' ? [outcome.value as OperatorTicket] : [])
    const refused = outcomes.flatMap((outcome) => outcome.status === 'rejected' ? [(outcome.reason as { code: string }).code] : [])
    t.equal(admitted.length, 5, `round ${round}: exactly five admitted`)
    t.same(refused, Array(15).fill('SS_TOO_MANY_OPERATORS'), `round ${round}: the rest are refused for the limit`)
    t.ok(admitted.every((ticket) => ticket.firstJoin), `round ${round}: every admitted operator joined for the first time`)

    const rows = await sql<Array<{ user_id: string }>>`select user_id from session_operators where session_id = ${session.id}`
    t.equal(rows.length, 5, `round ${round}: exactly five rows`)
    t.same(new Set(rows.map((row) => row.user_id)), new Set(admitted.map((ticket) => ticket.userId)), `round ${round}: the rows are the admitted operators`)
  }
})

t.test('unknown sessions are not found; finished ones are refused for both roles', async (t) => {
  const sql = pool(t)
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  await t.rejects(admission.admit(randomUUID(), 'op-1', key(undefined)), { code: 'SS_SESSION_NOT_FOUND', closeCode: 4404 })
  await t.rejects(admission.admit(randomUUID(), randomUUID(), key('key')), { code: 'SS_SESSION_NOT_FOUND' })

  const session = await createSession(sql)
  await admission.admit(session.id, 'op-known', key(undefined))
  await sql`update streaming_sessions set status = 'finished', finished_at = now() where id = ${session.id}`
  await t.rejects(admission.admit(session.id, session.clientId, key(session.streamKey)), { code: 'SS_SESSION_FINISHED', closeCode: 4410 })
  await t.rejects(admission.admit(session.id, 'op-known', key(undefined)), { code: 'SS_SESSION_FINISHED' })
  await t.rejects(admission.admit(session.id, 'op-new', key(undefined)), { code: 'SS_SESSION_FINISHED' })
  t.same(await state(sql, session.id), { status: 'finished', epoch: 0 })
})

t.test('publisherLeft returns the session to waiting only for the current publisher of an active session', async (t) => {
  const sql = pool(t)
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  const session = await createSession(sql)

  const first = await admission.admit(session.id, session.clientId, key(session.streamKey)) as PublisherTicket
  t.equal(await admission.publisherLeft(first), true)
  t.same(await state(sql, session.id), { status: 'waiting', epoch: 1 })
  t.equal(await admission.publisherLeft(first), false, 'leaving twice changes nothing')

  const older = await admission.admit(session.id, session.clientId, key(session.streamKey)) as PublisherTicket
  const newer = await admission.admit(session.id, session.clientId, key(session.streamKey)) as PublisherTicket
  t.equal(await admission.publisherLeft(older), false, 'a replaced publisher leaving changes nothing')
  t.same(await state(sql, session.id), { status: 'active', epoch: newer.epoch })

  await sql`update streaming_sessions set status = 'finished', finished_at = now() where id = ${session.id}`
  t.equal(await admission.publisherLeft(newer), false)
  t.equal((await state(sql, session.id)).status, 'finished')
})

t.test('an unreachable database fails admissions fast with SS_DB_UNAVAILABLE', async (t) => {
  const config = loadConfig({ DB_HOST: '127.0.0.1', DB_PORT: String(await freePort()) })
  const sql = connect(externalTarget(config.db), { max: 2 })
  t.teardown(() => sql.end({ timeout: 1 }))
  const admission = new Admission(stores(sql), { maxOperators: 3, authMode: 'open' })
  const sessionId = randomUUID()
  const started = Date.now()
  await t.rejects(admission.admit(sessionId, 'op-1', key(undefined)), { code: 'SS_DB_UNAVAILABLE', statusCode: 503, closeCode: 1013 })
  await t.rejects(admission.publisherLeft({ role: 'publisher', sessionId, clientId: randomUUID(), epoch: 1 }), { code: 'SS_DB_UNAVAILABLE' })
  t.ok(Date.now() - started < 6000, `answered in ${Date.now() - started} ms`)
})
