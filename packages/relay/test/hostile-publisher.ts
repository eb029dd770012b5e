/**
 * A publisher of crafted media in a process of its own (forked by
 * hostile-media.test.ts), so that building and masking its 8 MB messages
 * never delays the measuring clients' event loop.
 *
 * IPC: the parent sends an AttackPlan; the child connects one publisher per
 * URL and answers `{ ready: true }`; on `go` it sends each publisher's
 * crafted stream as one message, one after the other, and answers
 * `{ sent: <bytes> }` once all of them are handed to the kernel. Publishers
 * listed in `fragmented` send theirs as 1 MB fragments (one message still).
 */
import WebSocket from 'ws'
import { mp4FreeFlood, webmVoidFlood } from '@streaming-service/testing'

export interface AttackPlan { urls: string[], formats: Array<'webm' | 'mp4'>, fragmented: boolean[], bytes: number }
const FRAGMENT = 1024 * 1024

export type AttackReply = { ready: true } | { sent: number }

function reply (message: AttackReply): void {
  process.send!(message)
}

function fail (err: unknown): never {
  console.error(err)
  process.exit(1)
}

async function open (url: string): Promise<WebSocket> {
  return await new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false })
    socket.once('open', () => resolve(socket))
    socket.once('close', (code) => reject(new Error(`publisher closed before open: ${code}`)))
    socket.once('error', reject)
  })
}

process.once('message', (plan: AttackPlan) => {
  void (async () => {
    const crafted = { webm: webmVoidFlood(plan.bytes), mp4: mp4FreeFlood(plan.bytes) }
    const sockets = await Promise.all(plan.urls.map(open))
    process.once('message', () => {
      void (async () => {
        let sent = 0
        for (const [i, socket] of sockets.entries()) {
          const message = crafted[plan.formats[i]!]
          const fragment = plan.fragmented[i] === true ? FRAGMENT : message.length
          for (let offset = 0; offset < message.length; offset += fragment) {
            const fin = offset + fragment >= message.length
            await new Promise<void>((resolve, reject) => socket.send(message.subarray(offset, offset + fragment), { fin }, (err) => err == null ? resolve() : reject(err)))
          }
          sent += message.length
        }
        reply({ sent })
      })().catch(fail)
    })
    reply({ ready: true })
  })().catch(fail)
})
