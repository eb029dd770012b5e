import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

interface Teardown { teardown (fn: () => unknown): void }

/** A port that was free a moment ago (bound to 0, then released). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface TcpProxy {
  port: number
  child: ChildProcess
  /** SIGKILL by PID: every connection through it drops at once. */
  kill (): Promise<void>
}

/** Starts a throwaway forwarder process from 127.0.0.1:`port` (0 = any) to the target. */
export async function startTcpProxy (t: Teardown, targetPort: number, port = 0, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const script = fileURLToPath(new URL('./tcp-proxy.mjs', import.meta.url))
  const child = spawn(process.execPath, [script, String(port), targetHost, String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
  })
  const bound = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(/listening (\d+)/.exec(chunk.toString())?.[1])))
    child.once('exit', (code) => reject(new Error(`tcp proxy exited with ${code}`)))
  })
  return {
    port: bound,
    child,
    async kill () {
      if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
    },
  }
}

/** Polls `check` until it returns true or the deadline passes; returns the elapsed ms. */
export async function waitFor (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 50): Promise<number> {
  const started = Date.now()
  for (;;) {
    try {
      if (await check()) return Date.now() - started
    } catch {}
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
