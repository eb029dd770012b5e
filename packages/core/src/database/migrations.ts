import { existsSync } from 'node:fs'
import { readdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ley from 'ley'
import { MigrationFailedError } from '../errors.js'
import { borrowConnection, type BorrowedConnection, type DatabaseTarget, type Sql } from './connection.js'
import { wrapDatabaseError } from './errors.js'

/**
 * Migrations are ley files in `migrations/`, applied in name order and
 * recorded in ley's `migrations` table. ley itself takes no lock, so every
 * run goes through `lockedDriver`: one connection that holds a PostgreSQL
 * advisory lock while it reads what was applied and applies the rest, so
 * replicas starting together apply each migration exactly once.
 */

/** Arbitrary, fixed: "ss-migrations" as two int4 keys would be overkill. */
export const MIGRATION_LOCK_KEY = 727_274_101

const MIGRATION_FILE = /\.[cm]?js$/

/** `migrations/` at the root of the installation: the repository, or the deployed package. */
export function findDir (name: 'migrations' | 'seeds', override?: string): string {
  if (override !== undefined) return resolve(override)
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, name)) && existsSync(join(dir, 'package.json'))) return join(dir, name)
    const parent = dirname(dir)
    if (parent === dir) return resolve(name)
    dir = parent
  }
}

interface MigrationFile { name: string, abs: string }

function lockedDriver (target: DatabaseTarget) {
  let borrowed: BorrowedConnection | undefined
  return {
    async connect (): Promise<Sql> {
      borrowed = borrowConnection(target)
      try {
        await borrowed.sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
      } catch (err) {
        await borrowed.release()
        throw err
      }
      return borrowed.sql
    },
    async setup (sql: Sql): Promise<Array<{ name: string }>> {
      await sql`create table if not exists migrations (
        id serial primary key,
        name varchar(255) not null,
        created_at timestamp not null
      )`
      return await sql<Array<{ name: string }>>`select name from migrations order by id asc`
    },
    async loop (sql: Sql, files: MigrationFile[], method: 'up' | 'down'): Promise<void> {
      await sql.begin(async (tx) => {
        for (const file of files) {
          const migration = await import(new URL(`file://${file.abs}`).href) as Record<string, unknown>
          const step = migration[method]
          try {
            if (typeof step === 'function') await step(tx)
          } catch (err) {
            throw new MigrationFailedError(file.name, (err as Error).message, { cause: err })
          }
          if (method === 'up') await tx`insert into migrations (name, created_at) values (${file.name}, now())`
          else await tx`delete from migrations where name = ${file.name}`
        }
      })
    },
    async end (sql: Sql): Promise<void> {
      // Ending the session releases the lock too; unlock first so the next
      // replica does not wait for the socket to close (and because a lent
      // connection is not ended).
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {})
      await borrowed?.release()
    },
  }
}

function leyOptions (target: DatabaseTarget, dir: string) {
  return { cwd: '/', dir: resolve(dir), driver: lockedDriver(target) as unknown as string, config: {} }
}

async function run<T> (action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw wrapDatabaseError(err, action)
  }
}

/** Applies every pending migration; returns the names applied. */
export async function migrateUp (target: DatabaseTarget, dir: string): Promise<string[]> {
  return await run('migrate up', async () => await ley.up(leyOptions(target, dir)))
}

/** Reverts the last applied migration; returns its name (or nothing). */
export async function migrateDown (target: DatabaseTarget, dir: string): Promise<string[]> {
  return await run('migrate down', async () => await ley.down(leyOptions(target, dir)))
}

export interface MigrationStatus { applied: string[], pending: string[] }

export async function migrationStatus (target: DatabaseTarget, dir: string): Promise<MigrationStatus> {
  return await run('migrate status', async () => {
    const { sql, release } = borrowConnection(target)
    try {
      const applied = await appliedMigrations(sql)
      const files = await migrationFiles(dir)
      return { applied, pending: files.filter((name) => !applied.includes(name)) }
    } finally {
      await release()
    }
  })
}

export async function migrationFiles (dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[]
    throw err
  })
  return names.filter((name) => MIGRATION_FILE.test(name)).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
}

/** Names recorded in ley's table; none when the table does not exist yet. */
export async function appliedMigrations (sql: Sql): Promise<string[]> {
  try {
    const rows = await sql<Array<{ name: string }>>`select name from migrations order by id asc`
    return rows.map((row) => row.name)
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return []
    throw err
  }
}

/** Files of `dir` not recorded as applied (for /ready and `seed`). */
export async function pendingMigrations (sql: Sql, dir: string): Promise<string[]> {
  const [applied, files] = await Promise.all([appliedMigrations(sql), migrationFiles(dir)])
  return files.filter((name) => !applied.includes(name))
}

/** Writes `NNNNN_<name>.js` with empty up/down; returns its path. */
export async function createMigration (dir: string, name: string): Promise<string> {
  const slug = name.trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '')
  if (slug === '') throw new Error(`"${name}" is not a usable migration name (use letters, digits, _ or -)`)
  const files = await migrationFiles(dir)
  const last = files.map((file) => Number.parseInt(file, 10)).filter(Number.isFinite).reduce((a, b) => Math.max(a, b), 0)
  const path = join(resolve(dir), `${String(last + 1).padStart(5, '0')}_${slug}.js`)
  const body = `/** @param {import('postgres').Sql} sql */
export async function up (sql) {
  // await sql\`...\`
}

/** @param {import('postgres').Sql} sql */
export async function down (sql) {
  // await sql\`...\`
}
`
  await writeFile(path, body, { flag: 'wx' })
  return path
}
