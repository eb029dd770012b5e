import type { Sql } from './connection.js'
import { pendingMigrations } from './migrations.js'

/** Readiness: the database answers a query. */
export function databaseCheck (sql: Sql) {
  return async (): Promise<void> => {
    await sql`select 1`
  }
}

/** Readiness: every migration file of `dir` is applied (once true, remembered). */
export function migrationsCheck (sql: Sql, dir: string) {
  let applied = false
  return async (): Promise<void> => {
    if (applied) return
    const pending = await pendingMigrations(sql, dir)
    if (pending.length > 0) throw new Error(`pending: ${pending.join(', ')}`)
    applied = true
  }
}
