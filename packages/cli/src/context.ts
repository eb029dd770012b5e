import {
  chooseLogFormat, createLogger, findDir, loadConfig, openDatabase, prettyDestination, type Config, type Database, type Logger,
} from '@streaming-service/core'
import type { Env } from './env.js'

export interface Context {
  config: Readonly<Config>
  logger: Logger
  migrationsDir: string
  seedsDir: string
}

export function createContext (env: Env, name: string, level?: string): Context {
  const config = loadConfig(env)
  const format = chooseLogFormat(config.logFormat, { isTTY: process.stdout.isTTY === true, production: config.appEnv === 'production' })
  return {
    config,
    logger: createLogger(level ?? config.logLevel, name, format === 'pretty' ? prettyDestination() : undefined),
    migrationsDir: findDir('migrations', config.migrationsDir),
    seedsDir: findDir('seeds', config.seedsDir),
  }
}

/** Opens the database for a one-shot command and always closes it. */
export async function withDatabase<T> (context: Context, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(context.config.db, context.logger)
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}
