import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MigrationsPendingError, SeedFailedError } from '../errors.js'
import type { Sql } from './connection.js'
import { wrapDatabaseError } from './errors.js'
import { pendingMigrations } from './migrations.js'

/**
 * Runs every `*.sql` of `seedsDir` in name order, each in its own
 * transaction; none when the directory is absent (a production install).
 * Refuses while migrations are pending: seeds are written against the
 * latest schema.
 */
export async function runSeeds (sql: Sql, seedsDir: string, migrationsDir: string): Promise<string[]> {
  const pending = await pendingMigrations(sql, migrationsDir).catch((err: unknown) => { throw wrapDatabaseError(err, 'seed') })
  if (pending.length > 0) throw new MigrationsPendingError(`${pending.join(', ')}; run "streaming-service migrate up" first`)
  if (!existsSync(seedsDir)) return []
  const files = (await readdir(seedsDir)).filter((name) => name.endsWith('.sql')).sort()
  for (const name of files) {
    const text = await readFile(join(seedsDir, name), 'utf8')
    try {
      await sql.begin(async (tx) => { await tx.unsafe(text).simple() })
    } catch (err) {
      throw new SeedFailedError(name, (err as Error).message, { cause: err })
    }
  }
  return files
}
