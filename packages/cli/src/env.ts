import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseEnv } from 'node:util'

export type Env = Record<string, string | undefined>

/** `.env` of the working directory, when present, under the real environment. */
export function readEnv (cwd = process.cwd(), env: Env = process.env): Env {
  const file = join(cwd, '.env')
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {}
  return { ...fromFile, ...env }
}
