import { migrateUp, runSeeds, SeedInProductionError } from '@streaming-service/core'
import { createContext, withDatabase } from '../context.js'
import type { Env } from '../env.js'

/**
 * `seed`: runs `seeds/*.sql` in name order. Refuses while migrations are
 * pending unless `migrate` is set, which applies them first, and always in
 * production: seeds hold development data with well-known ids and keys.
 */
export async function seedCommand (env: Env, options: { migrate?: boolean } = {}, print: (line: string) => void = console.log): Promise<string[]> {
  const context = createContext(env, 'seed', 'warn')
  if (context.config.appEnv === 'production') throw new SeedInProductionError()
  return await withDatabase(context, async (db) => {
    if (options.migrate === true) await migrateUp(db.target, context.migrationsDir)
    const files = await runSeeds(db.sql, context.seedsDir, context.migrationsDir)
    print(files.length === 0 ? 'seeds: none found' : files.map((name) => `seeded ${name}`).join('\n'))
    return files
  })
}
