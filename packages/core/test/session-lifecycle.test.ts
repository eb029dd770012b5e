import { randomUUID } from 'node:crypto'
import t from 'tap'
import { connect, externalTarget, findDir, loadConfig, migrateUp, OperatorStore, SessionStore, type Sql } from '@streaming-service/core'
import { createTestDatabase, prng } from '@streaming-service/testing'

// Sessions per status come from counters the database keeps (no scan per
// scrape), and the sweeper's queries finish and delete the right sessions.

const db = await createTestDatabase(t, 'session_lifecycle')
const target = externalTarget(loadConfig(db.env).db)
await migrateUp(target, findDir('migrations'))
const sql: Sql = connect(target, { max: 4 })
t.teardown(() => sql.end({ timeout: 1 }))
const store = new SessionStore(sql)

async function scanned (): Promise<Record<string, number>> {
  const rows = await sql<Array<{ status: string, count: number }>>`select status, count(*)::int as count from streaming_sessions group by status`
  return Object.fromEntries(rows.map((row) => [row.status, row.count]))
}

async function counted (): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await store.countByStatus()).filter(([, count]) => count > 0))
}

t.test('the per-status counters match a full count after random creates, activations, leaves, finishes and deletes, some concurrent', async (t) => {
  const random = prng(42)
  const ids: string[] = []
  for (let round = 0; round < 30; round++) {
    const ops = Array.from({ length: 8 }, async () => {
      const pick = (): string | undefined => ids[Math.floor(random() * ids.length)]
      const dice = random()
      if (dice < 0.3 || ids.length === 0) ids.push((await store.create(randomUUID())).session.id)
      else if (dice < 0.5) await store.activate(pick()!).catch(() => {})
      else if (dice < 0.65) await sql`update streaming_sessions set status = 'waiting' where id = ${pick()!} and status = 'active'`
      else if (dice < 0.85) await store.finish(pick()!).catch(() => {}) // may have been deleted meanwhile
      else await sql`delete from streaming_sessions where id = ${pick()!}`
    })
    await Promise.all(ops)
  }
  t.same(await counted(), await scanned(), 'counters = count(*) by status')
})

t.test('sessions that never became active are finished past the idle TTL, in batches, once', async (t) => {
  await sql`delete from streaming_sessions`
  const old = await Promise.all(Array.from({ length: 5 }, async () => (await store.create(randomUUID())).session.id))
  const active = (await store.create(randomUUID())).session.id
  await store.activate(active)
  const startedThenLeft = (await store.create(randomUUID())).session.id
  await store.markWaiting(startedThenLeft, await store.activate(startedThenLeft))
  await sql`update streaming_sessions set created_at = now() - interval '2 hours'`
  const fresh = (await store.create(randomUUID())).session.id

  const [first, second] = await Promise.all([store.finishNeverActive(3_600_000, 3), store.finishNeverActive(3_600_000, 3)])
  const rest = await store.finishNeverActive(3_600_000, 3)
  const finished = [...first!, ...second!, ...rest]
  t.same(finished.sort(), [...old].sort(), 'exactly the old never-active sessions, each once, also with two sweepers at once')
  for (const id of [active, startedThenLeft, fresh]) t.not((await store.get(id)).status, 'finished', 'active, once active, or young: untouched')
  t.same(await counted(), await scanned())
})

t.test('finished sessions past the retention are deleted with their operators', async (t) => {
  await sql`delete from streaming_sessions`
  const expired = (await store.create(randomUUID())).session.id
  await new OperatorStore(sql).register(expired, 'op-1', 10)
  await store.finish(expired)
  const recent = (await store.create(randomUUID())).session.id
  await store.finish(recent)
  const live = (await store.create(randomUUID())).session.id
  await sql`update streaming_sessions set finished_at = now() - interval '31 days' where id = ${expired}`
  await sql`update streaming_sessions set created_at = now() - interval '40 days'`

  t.equal(await store.deleteFinished(30 * 86_400_000, 100), 1)
  await t.rejects(store.get(expired), { code: 'SS_SESSION_NOT_FOUND' })
  t.equal((await sql`select 1 from session_operators where session_id = ${expired}`).length, 0, 'its operators went with it')
  t.equal((await store.get(recent)).status, 'finished')
  t.equal((await store.get(live)).status, 'waiting')
  t.same(await counted(), await scanned())
})
