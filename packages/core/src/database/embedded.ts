import { existsSync } from 'node:fs'
import { mkdir, open, readFile, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { DataDirLockedError } from '../errors.js'

export interface EmbeddedServer {
  host: string
  port: number
  dataDir: string
  close (): Promise<void>
}

const LOCK_FILE = 'streaming-service.lock'
/** Written by scripts/build-embedded-template.mjs at build time. */
const TEMPLATE = new URL('../embedded/pglite-template.tar.gz', import.meta.url)

/** A fresh data dir starts from the build's template (no initdb); an existing one opens as is. */
async function openPGlite (path: string): Promise<PGlite> {
  if (existsSync(join(path, 'PG_VERSION')) || !existsSync(TEMPLATE)) return await PGlite.create(path)
  const template = new Blob([await readFile(TEMPLATE)])
  return await PGlite.create(path, { loadDataDir: template })
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes DATA_DIR for this process: PGlite does not lock its files, and two
 * processes writing one data dir corrupt it. A lock left by a dead process is
 * taken over.
 */
async function lockDataDir (dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, 'wx')
      await file.writeFile(String(process.pid))
      await file.close()
      return async () => { await unlink(path).catch(() => {}) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new DataDirLockedError(dataDir, owner)
      }
      await unlink(path).catch(() => {})
    }
  }
  throw new DataDirLockedError(dataDir, 'unknown')
}

/**
 * PGlite (PostgreSQL compiled to WASM) in `dataDir`, served over a loopback
 * socket so the same postgres.js client, SQL and migrations serve both modes.
 * It serves one connection: PGlite is a single backend session, and
 * pglite-socket interleaves the messages of concurrent connections (see
 * openDatabase). The server takes no second connection (its client would
 * retry forever); `connect` refuses to open one.
 */
export async function startEmbedded (dataDir: string): Promise<EmbeddedServer> {
  const dir = resolve(dataDir)
  await mkdir(dir, { recursive: true })
  const unlock = await lockDataDir(dir)
  let db: PGlite | undefined
  try {
    db = await openPGlite(join(dir, 'pgdata'))
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 })
    await server.start()
    const port = Number(server.getServerConn().split(':').pop())
    const pglite = db
    return {
      host: '127.0.0.1',
      port,
      dataDir: dir,
      async close () {
        await server.stop()
        await pglite.close()
        await unlock()
      },
    }
  } catch (err) {
    await db?.close().catch(() => {})
    await unlock()
    throw err
  }
}
