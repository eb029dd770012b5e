/**
 * A publisher of crafted media in a process of its own (forked by
 * hostile-media.test.ts), so that building and masking its 8 MB messages
 * never delays the measuring clients' event loop.
 *
 * IPC: the parent sends an AttackPlan; the child connects one publisher per
 * URL, frames and masks every message in advance and answers `{ ready: true }`;
 * on `go` it writes each publisher's crafted stream, one message after the
 * other, at `bytesPerSecond` (a publisher with that much bandwidth), and
 * answers `{ sent: <payload bytes> }` once all of it is handed to the kernel.
 * Publishers listed in `fragmented` send theirs as 1 MB fragments (one
 * message still).
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { Socket } from 'node:net'
import * as ws from 'ws'
import { mp4FreeFlood, openWebSocket, webmVoidFlood } from '@streaming-service/testing'
import { fail } from './child-process-helpers.js'

export interface AttackPlan { urls: string[], formats: Array<'webm' | 'mp4'>, fragmented: boolean[], bytes: number, bytesPerSecond: number }
export type AttackReply = { ready: true } | { sent: number }

interface FrameOptions { fin: boolean, opcode: number, mask: boolean, readOnly: boolean, rsv1: boolean }
// Not in ws's type definitions (as in src/frames.ts).
const { Sender } = ws as unknown as { Sender: { frame: (data: Buffer, options: FrameOptions) => Buffer[] } }

const FRAGMENT = 1024 * 1024
/** Bytes written per tick of the pacing loop. */
const TICK_BYTES = 64 * 1024

function reply (message: AttackReply): void {
  process.send!(message)
}

/** `message` as masked client frames of at most `fragment` bytes, ready for the wire. */
function framed (message: Buffer, fragment: number): Buffer {
  const frames: Buffer[] = []
  for (let offset = 0; offset < message.length; offset += fragment) {
    const fin = offset + fragment >= message.length
    frames.push(...Sender.frame(message.subarray(offset, offset + fragment), { fin, opcode: offset === 0 ? 2 : 0, mask: true, readOnly: true, rsv1: false }))
  }
  return Buffer.concat(frames)
}

/** Writes `bytes` to `socket` at `bytesPerSecond`, from `start` (performance.now()) on. */
async function paced (socket: Socket, bytes: Buffer, bytesPerSecond: number, start: number, alreadySent: number): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += TICK_BYTES) {
    const due = start + (alreadySent + offset) / bytesPerSecond * 1000
    if (due > performance.now()) await delay(due - performance.now())
    if (!socket.write(bytes.subarray(offset, offset + TICK_BYTES))) await new Promise((resolve) => socket.once('drain', resolve))
  }
  await new Promise<void>((resolve, reject) => socket.write(Buffer.alloc(0), (err) => err == null ? resolve() : reject(err)))
}

process.once('message', (plan: AttackPlan) => {
  void (async () => {
    const crafted = { webm: webmVoidFlood(plan.bytes), mp4: mp4FreeFlood(plan.bytes) }
    const sockets = await Promise.all(plan.urls.map(openWebSocket))
    const wire = plan.formats.map((format, i) => framed(crafted[format], plan.fragmented[i] === true ? FRAGMENT : crafted[format].length))
    process.once('message', () => {
      void (async () => {
        const start = performance.now()
        let written = 0
        let sent = 0
        for (const [i, socket] of sockets.entries()) {
          // ws's own sender stays idle: the frames go straight to its TCP socket.
          await paced((socket as unknown as { _socket: Socket })._socket, wire[i]!, plan.bytesPerSecond, start, written)
          written += wire[i]!.length
          sent += crafted[plan.formats[i]!].length
        }
        reply({ sent })
      })().catch(fail)
    })
    reply({ ready: true })
  })().catch(fail)
})
