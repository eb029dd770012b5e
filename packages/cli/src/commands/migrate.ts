import { createMigration, migrateDown, migrateUp, migrationStatus } from '@streaming-service/core'
import { createContext, withDatabase } from '../context.js'
import type { Env } from '../env.js'

type Print = (line: string) => void

/** `migrate up`: applies every pending migration under the advisory lock. */
export async function migrateUpCommand (env: Env, print: Print = console.log): Promise<string[]> {
  const context = createContext(env, 'migrate', 'warn')
  const applied = await withDatabase(context, async (db) => await migrateUp(db.target, context.migrationsDir))
  print(applied.length === 0 ? 'migrations: nothing to apply' : applied.map((name) => `applied ${name}`).join('\n'))
  return applied
}

/** `migrate down`: reverts the last applied migration. */
export async function migrateDownCommand (env: Env, print: Print = console.log): Promise<string[]> {
  const context = createContext(env, 'migrate', 'warn')
  const reverted = await withDatabase(context, async (db) => await migrateDown(db.target, context.migrationsDir))
  print(reverted.length === 0 ? 'migrations: nothing to revert' : reverted.map((name) => `reverted ${name}`).join('\n'))
  return reverted
}

/** `migrate status`: applied and pending migrations. */
export async function migrateStatusCommand (env: Env, print: Print = console.log) {
  const context = createContext(env, 'migrate', 'warn')
  const status = await withDatabase(context, async (db) => await migrationStatus(db.target, context.migrationsDir))
  for (const name of status.applied) print(`applied  ${name}`)
  for (const name of status.pending) print(`pending  ${name}`)
  if (status.applied.length + status.pending.length === 0) print('migrations: none')
  return status
}

/** `command migrate-create <name>` / `migrate create <name>`: a new empty migration. */
export async function migrateCreateCommand (env: Env, name: string, print: Print = console.log): Promise<string> {
  const context = createContext(env, 'migrate', 'warn')
  const path = await createMigration(context.migrationsDir, name)
  print(`created ${path}`)
  return path
}
