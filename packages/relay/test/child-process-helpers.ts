/** What the helper processes forked by hostile-media.test.ts (hostile-publisher.ts, latency-probe.ts) share. */
import WebSocket from 'ws'

/** Ends the process on an error the parent will see as an early exit. */
export function fail (err: unknown): never {
  console.error(err)
  process.exit(1)
}

/** A WebSocket client once it is open (uncompressed, as a relay's publishers and operators are). */
export async function openWebSocket (url: string): Promise<WebSocket> {
  return await new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false })
    socket.once('open', () => resolve(socket))
    socket.once('close', (code) => reject(new Error(`${url} closed before open: ${code}`)))
    socket.once('error', reject)
  })
}
