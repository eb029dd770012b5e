import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  borrowConnection, connect, createLogger, externalTarget, findDir, loadConfig, migrateUp, migrationFiles, migrationStatus, openDatabase, SessionStore,
  wrapDatabaseError,
} from '@streaming-service/core'
import { createTestDatabase, freePort, startTcpProxy, tempDir, waitFor } from '@streaming-service/testing'

const silent = createLogger('silent', 'test')

t.test('driver errors are wrapped: connection failures are 503, others 500, cause kept', async (t) => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  const unavailable = wrapDatabaseError(refused, 'create session')
  t.equal(unavailable.code, 'SS_DB_UNAVAILABLE')
  t.equal(unavailable.statusCode, 503)
  t.equal(unavailable.cause, refused)
  const syntax = Object.assign(new Error('syntax error'), { code: '42601' })
  const failed = wrapDatabaseError(syntax, 'create session')
  t.equal(failed.code, 'SS_DB_QUERY_FAILED')
  t.equal(failed.statusCode, 500)
  t.equal(wrapDatabaseError(failed, 'again'), failed, 'registry errors pass through unchanged')
})

t.test('an unreachable database fails fast with SS_DB_UNAVAILABLE', async (t) => {
  const config = loadConfig({ DB_HOST: '127.0.0.1', DB_PORT: String(await freePort()) })
  const sql = connect(externalTarget(config.db), { max: 2 })
  t.teardown(() => sql.end({ timeout: 1 }))
  const store = new SessionStore(sql)
  const started = Date.now()
  await t.rejects(store.create('6b3c2f3e-6b51-4a43-9d0e-6f1f3c2b1a10'), { code: 'SS_DB_UNAVAILABLE', statusCode: 503 })
  t.ok(Date.now() - started < 6000, `answered in ${Date.now() - started} ms`)
})

t.test('queries fail while the database is gone and work again when it returns', async (t) => {
  const db = await createTestDatabase(t, 'outage')
  const target = new URL(db.url)
  const proxy = await startTcpProxy(t, Number(target.port || 5432))
  const config = loadConfig({ ...db.env, DB_HOST: '127.0.0.1', DB_PORT: String(proxy.port) })
  await migrateUp(externalTarget(config.db), findDir('migrations'))
  const sql = connect(externalTarget(config.db), { max: 2 })
  t.teardown(() => sql.end({ timeout: 1 }))
  const store = new SessionStore(sql)
  const { session } = await store.create('6b3c2f3e-6b51-4a43-9d0e-6f1f3c2b1a10')

  await proxy.kill()
  await t.rejects(store.get(session.id), { code: 'SS_DB_UNAVAILABLE' })

  await startTcpProxy(t, Number(target.port || 5432), proxy.port)
  const recoveredIn = await waitFor('the store to answer again', async () => (await store.get(session.id)).id === session.id, 10_000)
  t.ok(recoveredIn < 10_000, `recovered ${recoveredIn} ms after the database came back`)
})

t.test('a transaction whose backend dies rejects instead of crashing the process (patched postgres.js)', async (t) => {
  // Upstream porsager/postgres#1208: begin()'s own ROLLBACK is written to a
  // null socket from a timer and throws an uncaught TypeError. Run the
  // scenario in a child so a regression shows as a crash, not a broken runner.
  const db = await createTestDatabase(t, 'txcrash')
  const dir = tempDir()
  const script = join(dir, 'scenario.mjs')
  const postgresEntry = import.meta.resolve('postgres')
  writeFileSync(script, `
    import postgres from ${JSON.stringify(postgresEntry)}
    const sql = postgres(${JSON.stringify(db.url)}, { max: 2, onnotice: () => {} })
    const killer = postgres(${JSON.stringify(db.url)}, { max: 1, onnotice: () => {} })
    let pid = null
    const tx = sql.begin(async (t) => {
      const [row] = await t\`select pg_backend_pid() as pid\`
      pid = row.pid
      await t\`select pg_sleep(5)\`
    })
    while (pid === null) await new Promise((r) => setTimeout(r, 20))
    await killer\`select pg_terminate_backend(\${pid})\`
    const outcome = await tx.then(() => 'resolved', (err) => err.code)
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setTimeout(r, 200))
    const [{ ok }] = await sql\`select 1 as ok\`
    console.log(JSON.stringify({ outcome, poolWorks: ok === 1 }))
    await sql.end({ timeout: 1 }); await killer.end({ timeout: 1 })
  `)
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, `the process survives (stderr: ${stderr.trim()})`)
  t.same(JSON.parse(stdout.trim()), { outcome: 'CONNECTION_CLOSED', poolWorks: true })
})

t.test('the embedded database serves SQL over a loopback socket and keeps data', async (t) => {
  const dataDir = join(tempDir(), 'nested', 'data')
  const config = loadConfig({ DATA_DIR: dataDir })
  const first = await openDatabase(config.db, silent)
  t.equal(first.embedded, true)
  t.match(first.target.description, /embedded PGlite/)
  await first.sql`create table kept (v int)`
  await first.sql`insert into kept values (42)`
  await first.close()

  const second = await openDatabase(config.db, silent)
  t.teardown(() => second.close())
  const [row] = await second.sql`select v from kept`
  t.equal(row?.v, 42)
})

t.test('two processes never open one embedded data dir; a stale lock is taken over', async (t) => {
  const dataDir = tempDir()
  const holder = spawn('sleep', ['30'])
  t.teardown(() => holder.kill('SIGKILL'))
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(join(dataDir, 'streaming-service.lock'), String(holder.pid))
  const config = loadConfig({ DATA_DIR: dataDir })
  await t.rejects(openDatabase(config.db, silent), { code: 'SS_DB_DATA_DIR_LOCKED' })

  holder.kill('SIGKILL')
  await new Promise((resolve) => holder.on('exit', resolve))
  const db = await openDatabase(config.db, silent)
  t.equal(readFileSync(join(dataDir, 'streaming-service.lock'), 'utf8'), String(process.pid))
  await db.close()
})

t.test('a real PostgreSQL target is described without its password', async (t) => {
  const config = loadConfig({ DATABASE_URL: 'postgres://app:hunter2@db.internal:5432/streams' })
  const target = externalTarget(config.db)
  t.equal(target.description, 'postgres://app@db.internal:5432/streams')
  const fromParts = externalTarget(loadConfig({ DB_HOST: 'db', DB_PASSWORD: 'hunter2' }).db)
  t.notMatch(fromParts.description, /hunter2/)
})

t.test('the embedded database runs on one connection: migrations, transactions and plain queries interleave correctly', async (t) => {
  const db = await openDatabase(loadConfig({ DATA_DIR: tempDir() }).db, silent)
  t.teardown(() => db.close())
  t.throws(() => connect(db.target), /takes one connection/, 'no second client can be opened on it')
  const borrowed = borrowConnection(db.target)
  t.equal(borrowed.sql, db.sql, 'one-off work borrows the one client')
  await borrowed.release()
  await db.sql`create table tally (worker int, n int)`
  const files = await migrationFiles(findDir('migrations'))
  t.ok(files.length > 0, 'there are migrations to apply')

  // Everything at once: the migrations (advisory lock + one transaction),
  // 20 transactions that each see only their own writes plus what committed
  // before them, one that fails and rolls back, and 50 pipelined reads.
  const migrations = migrateUp(db.target, findDir('migrations'))
  const transactions = Array.from({ length: 20 }, async (_, worker) => await db.sql.begin(async (tx) => {
    await tx`insert into tally values (${worker}, 1), (${worker}, 2)`
    const [mine] = await tx<Array<{ sum: number }>>`select sum(n)::int as sum from tally where worker = ${worker}`
    return mine!.sum
  }))
  const failing = db.sql.begin(async (tx) => {
    await tx`insert into tally values (-1, 100)`
    await tx`select 1 / 0`
  }).then(() => 'committed', (err: { code?: string }) => err.code)
  const reads = Array.from({ length: 50 }, async (_, i) => (await db.sql<Array<{ i: number }>>`select ${i}::int as i`)[0]!.i)
  const [applied, sums, failed, answers] = await Promise.all([migrations, Promise.all(transactions), failing, Promise.all(reads)])

  t.same(applied, files, 'every migration applied')
  t.same(sums, Array.from({ length: 20 }, () => 3), 'each transaction saw exactly its own rows')
  t.equal(failed, '22012', 'a failing transaction rejects with its error (division by zero)')
  t.same(answers, Array.from({ length: 50 }, (_, i) => i), 'every read got its own answer')
  const [total] = await db.sql<Array<{ rows: number, workers: number }>>`select count(*)::int as rows, count(distinct worker)::int as workers from tally`
  t.same(total, { rows: 40, workers: 20 }, 'committed rows kept, the failed transaction rolled back')
  t.same(await migrationStatus(db.target, findDir('migrations')), { applied: files, pending: [] }, 'status reads them on the same client')
  t.same([...await db.sql`select 1 as still`], [{ still: 1 }], 'the client still works after lending itself out')
})
