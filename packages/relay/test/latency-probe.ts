/**
 * The measured session of hostile-media.test.ts, in a process of its own
 * (forked by the test): one publisher sends 1 KB frames at 100/s, each with
 * its sequence number and send time, to one operator in this same process.
 * Apart from the test's runner (tap, its reporter, the /health and /metrics
 * polls), the latencies are the relay's and the network's.
 *
 * IPC: the parent sends a ProbePlan; the child connects both sockets, checks
 * that a message gets through and answers `{ ready: true }`; on `start` it
 * starts sending; on `stop` it stops, waits for the last frame and answers
 * with a ProbeReport. Times are epoch milliseconds (performance.timeOrigin +
 * performance.now()), comparable across processes.
 */
import { performance } from 'node:perf_hooks'
import { openWebSocket } from '@streaming-service/testing'
import { fail } from './child-process-helpers.js'

export interface ProbePlan { publisherUrl: string, operatorUrl: string }
export interface ProbeReport { sent: number, received: number, errors: string[], latencies: Array<{ sentAt: number, ms: number }> }
export type ProbeReply = { ready: true } | ProbeReport

const now = (): number => performance.timeOrigin + performance.now()

async function until (what: string, condition: () => boolean, timeoutMs: number, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    each?.()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

process.once('message', (plan: ProbePlan) => {
  void (async () => {
    const operator = await openWebSocket(plan.operatorUrl)
    const publisher = await openWebSocket(plan.publisherUrl)
    const report: ProbeReport = { sent: 0, received: 0, errors: [], latencies: [] }
    let primed = false
    operator.on('message', (data: Buffer, binary: boolean) => {
      const at = now()
      if (!binary) { primed = true; return }
      const seq = data.readUInt32BE(0)
      if (seq !== report.received && report.errors.length < 10) report.errors.push(`expected #${report.received}, got #${seq}`)
      report.received = seq + 1
      report.latencies.push({ sentAt: data.readDoubleBE(4), ms: at - data.readDoubleBE(4) })
    })
    await until('the operator to receive a probe', () => primed, 10_000, () => publisher.send('probe'))
    let sender: NodeJS.Timeout | undefined
    process.on('message', (command: 'start' | 'stop') => {
      if (command === 'start') {
        sender = setInterval(() => {
          const frame = Buffer.alloc(1024)
          frame.writeUInt32BE(report.sent++, 0)
          frame.writeDoubleBE(now(), 4)
          publisher.send(frame)
        }, 10)
        return
      }
      clearInterval(sender)
      void until('every frame', () => report.received >= report.sent || report.errors.length > 0, 10_000)
        .catch((err: Error) => { report.errors.push(err.message) })
        .then(() => process.send!(report))
    })
    process.send!({ ready: true } satisfies ProbeReply)
  })().catch(fail)
})
