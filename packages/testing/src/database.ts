import { randomBytes } from 'node:crypto'
import postgres from 'postgres'

/** The PostgreSQL server tests create their databases on. */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

interface Teardown { teardown (fn: () => unknown): void }

export interface TestDatabase {
  name: string
  url: string
  /** DB_* variables pointing a service process at this database. */
  env: Record<string, string>
}

async function admin<T> (fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(TEST_SERVER_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 })
  try {
    return await fn(sql)
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ECONNREFUSED' || code === 'CONNECT_TIMEOUT') {
      throw new Error(`PostgreSQL is not reachable at ${TEST_SERVER_URL}: start it (e.g. "pg_ctlcluster 15 main start") or set TEST_DATABASE_URL`, { cause: err })
    }
    throw err
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** A fresh, empty database for one test file, dropped at teardown. */
export async function createTestDatabase (t: Teardown, label = 'test'): Promise<TestDatabase> {
  const name = `ss_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`
  await admin(async (sql) => { await sql.unsafe(`create database ${name}`) })
  t.teardown(async () => {
    await admin(async (sql) => { await sql.unsafe(`drop database if exists ${name} with (force)`) })
  })
  const url = new URL(TEST_SERVER_URL)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    env: {
      DB_HOST: url.hostname,
      DB_PORT: url.port === '' ? '5432' : url.port,
      DB_USER: decodeURIComponent(url.username) || 'postgres',
      ...(url.password === '' ? {} : { DB_PASSWORD: decodeURIComponent(url.password) }),
      DB_DATABASE: name,
    },
  }
}
