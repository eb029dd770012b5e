import { cpSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import postgres from 'postgres'
import { createTestDatabase, REPO_ROOT, runCli, tempDir } from '@streaming-service/testing'

const MIGRATIONS = readdirSync(join(REPO_ROOT, 'migrations')).filter((name) => name.endsWith('.js')).sort()

async function query<T extends object> (url: string, text: string): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    return [...await sql.unsafe<T[]>(text)]
  } finally {
    await sql.end({ timeout: 5 })
  }
}

t.test('three "migrate up" started at the same moment apply each migration exactly once', async (t) => {
  const db = await createTestDatabase(t, 'race')
  const runs = await Promise.all([1, 2, 3].map(async () => await runCli(['migrate', 'up'], db.env)))
  for (const run of runs) t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr.trim()})`)
  const appliedLines = runs.flatMap((run) => run.stdout.split('\n').filter((line) => line.startsWith('applied ')))
  t.same(appliedLines.sort(), MIGRATIONS.map((name) => `applied ${name}`), 'each file applied by exactly one process')
  const rows = await query<{ name: string, n: number }>(db.url, 'select name, count(*)::int as n from migrations group by name order by name')
  t.same(rows, MIGRATIONS.map((name) => ({ name, n: 1 })))
})

t.test('"migrate down" then "migrate up" round-trips, and "migrate status" tells which is which', async (t) => {
  const db = await createTestDatabase(t, 'downup')
  t.equal((await runCli(['migrate', 'up'], db.env)).code, 0)
  const last = MIGRATIONS[MIGRATIONS.length - 1]!
  const down = await runCli(['migrate', 'down'], db.env)
  t.equal(down.code, 0, down.stderr)
  t.match(down.stdout, `reverted ${last}`)
  const status = await runCli(['migrate', 'status'], db.env)
  t.match(status.stdout, `pending  ${last}`)
  if (last === '00001_streaming_sessions.js') {
    const tables = await query<{ n: number }>(db.url, "select count(*)::int as n from information_schema.tables where table_name in ('streaming_sessions', 'session_operators')")
    t.equal(tables[0]?.n, 0, 'the tables are gone')
  }
  const up = await runCli(['migrate', 'up'], db.env)
  t.equal(up.code, 0, up.stderr)
  t.match(up.stdout, `applied ${last}`)
  const again = await runCli(['migrate', 'status'], db.env)
  t.notMatch(again.stdout, 'pending')
  t.match(again.stdout, `applied  ${last}`)
  t.match((await runCli(['migrate', 'up'], db.env)).stdout, 'nothing to apply')
})

t.test('"command migrate-create" and "migrate create" write migrations that "migrate up" runs', async (t) => {
  const db = await createTestDatabase(t, 'create')
  const dir = join(tempDir(), 'migrations')
  cpSync(join(REPO_ROOT, 'migrations'), dir, { recursive: true })
  const env = { ...db.env, MIGRATIONS_DIR: dir }

  const created = await runCli(['command', 'migrate-create', 'Add notes'], env)
  t.equal(created.code, 0, created.stderr)
  const next = String(MIGRATIONS.length + 1).padStart(5, '0')
  const file = join(dir, `${next}_add_notes.js`)
  t.match(created.stdout, file)
  writeFileSync(file, 'export async function up (sql) { await sql`create table notes (body text)` }\nexport async function down (sql) { await sql`drop table notes` }\n')

  const alias = await runCli(['migrate', 'create', 'second-one'], env)
  t.equal(alias.code, 0, alias.stderr)
  t.match(alias.stdout, `${String(MIGRATIONS.length + 2).padStart(5, '0')}_second_one.js`)

  const up = await runCli(['migrate', 'up'], env)
  t.equal(up.code, 0, up.stderr)
  t.match(up.stdout, `applied ${next}_add_notes.js`)
  t.match(up.stdout, 'second_one.js', 'the empty template runs too')
  const notes = await query<{ n: number }>(db.url, "select count(*)::int as n from information_schema.tables where table_name = 'notes'")
  t.equal(notes[0]?.n, 1)

  const nameless = await runCli(['migrate', 'create'], env)
  t.equal(nameless.code, 2, 'a missing name is a usage error')
})

t.test('"seed" refuses while migrations are pending and runs seeds/*.sql after', async (t) => {
  const db = await createTestDatabase(t, 'seed')
  const refused = await runCli(['seed'], db.env)
  t.equal(refused.code, 1)
  t.match(refused.stderr, /migrations are pending/)
  t.match(refused.stderr, 'SS_MIGRATIONS_PENDING')

  t.equal((await runCli(['migrate', 'up'], db.env)).code, 0)
  const seeded = await runCli(['seed'], db.env)
  t.equal(seeded.code, 0, seeded.stderr)
  t.match(seeded.stdout, 'seeded 001_demo_session.sql')
  const rows = await query<{ n: number }>(db.url, 'select count(*)::int as n from streaming_sessions')
  t.equal(rows[0]?.n, 1)
  t.equal((await runCli(['seed'], db.env)).code, 0, 'seeds can run again')
  t.equal((await query<{ n: number }>(db.url, 'select count(*)::int as n from streaming_sessions'))[0]?.n, 1)
})

t.test('"seed --migrate" applies migrations first', async (t) => {
  const db = await createTestDatabase(t, 'seedm')
  const run = await runCli(['seed', '--migrate'], db.env)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, 'seeded 001_demo_session.sql')
})

t.test('a failing migration names its file and applies nothing of it', async (t) => {
  const db = await createTestDatabase(t, 'broken')
  const dir = join(tempDir(), 'migrations')
  cpSync(join(REPO_ROOT, 'migrations'), dir, { recursive: true })
  writeFileSync(join(dir, '99999_broken.js'), 'export async function up (sql) { await sql`create table half (x int)`; await sql`select nonsense from nowhere` }\n')
  const run = await runCli(['migrate', 'up'], { ...db.env, MIGRATIONS_DIR: dir })
  t.equal(run.code, 1)
  t.match(run.stderr, '99999_broken.js')
  t.match(run.stderr, 'SS_MIGRATION_FAILED')
  const half = await query<{ n: number }>(db.url, "select count(*)::int as n from information_schema.tables where table_name = 'half'")
  t.equal(half[0]?.n, 0, 'the transaction was rolled back')
})
