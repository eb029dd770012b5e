/**
 * The load generator: every publisher and operator of a scenario as `ws`
 * clients in this one process (forked by run.ts), so a send timestamp and its
 * receipt are read on the same clock. It measures its own CPU and event-loop
 * utilisation so a reader can tell whether the generator was the bottleneck.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { HEADER_BYTES, type FromLoad, type LoadPlan, type LoadResult, type ToLoad } from './protocol.js'

const CONNECT_CONCURRENCY = 20
const CONNECT_TIMEOUT_MS = 20_000

async function send (message: FromLoad): Promise<void> {
  await new Promise<void>((resolve, reject) => process.send!(message, undefined, undefined, (err) => err === null ? resolve() : reject(err)))
}

let acked: (() => void) | undefined
async function mark (phase: 'start' | 'end'): Promise<void> {
  await new Promise<void>((resolve) => {
    acked = resolve
    void send({ type: 'mark', phase })
  })
}

async function connect (url: string): Promise<WebSocket> {
  const socket = new WebSocket(url, { perMessageDeflate: false })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.terminate(); reject(new Error(`${url}: not open within ${CONNECT_TIMEOUT_MS} ms`)) }, CONNECT_TIMEOUT_MS)
    socket.once('open', () => { clearTimeout(timer); resolve(socket) })
    socket.once('error', (err) => { clearTimeout(timer); reject(new Error(`${url}: ${err.message}`)) })
    socket.once('close', (code, reason) => { clearTimeout(timer); reject(new Error(`${url}: closed before open: ${code} ${reason.toString()}`)) })
  })
}

async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index]!, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

function percentile (sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

/**
 * Sends `count` messages at `fps` on an absolute schedule starting at
 * `start` (drift-corrected: each timer aims at start + k·period, so timer
 * lateness never accumulates; a late wake-up sends what is due).
 */
async function pace (options: {
  start: number, fps: number, count: number, lag: number[] | undefined, emit: (seq: number) => void
}): Promise<void> {
  const period = 1000 / options.fps
  let k = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      while (k < options.count && options.start + k * period <= now) {
        options.lag?.push(now - (options.start + k * period))
        options.emit(k++)
      }
      if (k >= options.count) {
        resolve()
        return
      }
      setTimeout(tick, Math.max(0, options.start + k * period - performance.now()))
    }
    setTimeout(tick, Math.max(0, options.start - performance.now()))
  })
}

async function run (plan: LoadPlan): Promise<LoadResult> {
  const connectStarted = performance.now()
  // Publishers first: the ceiling makes a room's first connection its publisher.
  const publishers = await mapLimit(plan.sessions, CONNECT_CONCURRENCY, async (session) => await connect(session.publisherUrl))
  const operatorPlan = plan.sessions.flatMap((session, index) => session.operatorUrls.map((url) => ({ url, index })))
  const operators = await mapLimit(operatorPlan, CONNECT_CONCURRENCY, async ({ url }) => await connect(url))
  const connectMs = performance.now() - connectStarted

  const perMessage = plan.sessions.map((session) => session.operatorUrls.length)
  const framesPerPublisher = Math.round(plan.durationMs / 1000 * plan.fps)
  const expected = framesPerPublisher * perMessage.reduce((a, b) => a + b, 0)
  const latencies = new Float64Array(expected)
  let delivered = 0
  let deliveredBytes = 0
  let outOfOrder = 0
  let wrongSize = 0
  const closes: Record<string, number> = {}
  let finished = false

  const onClose = (code: number) => {
    if (!finished) closes[code] = (closes[code] ?? 0) + 1
  }
  for (const socket of publishers) socket.on('close', onClose)
  operators.forEach((socket, i) => {
    const session = operatorPlan[i]!.index
    let lastSeq = -1
    socket.on('close', onClose)
    socket.on('message', (data: Buffer) => {
      const receivedAt = performance.now()
      if (data.length < HEADER_BYTES || data[16] === 1) return
      if (data.length !== plan.messageSize || data.readUInt32LE(12) !== session) wrongSize++
      const seq = data.readUInt32LE(8)
      if (seq <= lastSeq) outOfOrder++
      lastSeq = seq
      if (delivered < latencies.length) latencies[delivered] = receivedAt - data.readDoubleLE(0)
      delivered++
      deliveredBytes += data.length
    })
  })

  // Bytes a publisher could not hand to the kernel: the server stopped reading it (TCP backpressure).
  let publisherBacklog = 0
  const filler = randomBytes(plan.messageSize)
  const emitter = (socket: WebSocket, session: number, warmup: boolean) => (seq: number) => {
    if (socket.readyState !== WebSocket.OPEN) return
    // A fresh buffer per message: the generator never mutates what ws may still hold.
    const payload = Buffer.allocUnsafe(plan.messageSize)
    filler.copy(payload, HEADER_BYTES, HEADER_BYTES)
    payload.writeUInt32LE(seq, 8)
    payload.writeUInt32LE(session, 12)
    payload[16] = warmup ? 1 : 0
    payload.writeDoubleLE(performance.now(), 0)
    socket.send(payload, { binary: true })
    if (!warmup && socket.bufferedAmount > publisherBacklog) publisherBacklog = socket.bufferedAmount
  }
  // Publishers are spread evenly over one frame period, as independent cameras would be.
  const phase = (index: number) => index / publishers.length * (1000 / plan.fps)

  if (plan.warmupMs > 0) {
    const start = performance.now() + 20
    const count = Math.round(plan.warmupMs / 1000 * plan.fps)
    await Promise.all(publishers.map(async (socket, index) =>
      await pace({ start: start + phase(index), fps: plan.fps, count, lag: undefined, emit: emitter(socket, index, true) })))
    await new Promise((resolve) => setTimeout(resolve, 250))
  }

  await mark('start')
  const cpu0 = process.cpuUsage()
  const elu0 = performance.eventLoopUtilization()
  const t0 = performance.now()
  const lag: number[] = []
  const start = performance.now() + 20
  await Promise.all(publishers.map(async (socket, index) =>
    await pace({ start: start + phase(index), fps: plan.fps, count: framesPerPublisher, lag, emit: emitter(socket, index, false) })))
  const sentAll = performance.now()
  // `delivered` grows in the message handlers while this waits.
  const allIn = () => delivered >= expected
  while (!allIn() && performance.now() - sentAll < plan.drainMs) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const cpu = process.cpuUsage(cpu0)
  const elu = performance.eventLoopUtilization(elu0)
  const wallSeconds = (performance.now() - t0) / 1000
  await mark('end')
  finished = true

  for (const socket of [...publishers, ...operators]) socket.terminate()
  const sorted = latencies.subarray(0, Math.min(delivered, latencies.length)).sort()
  lag.sort((a, b) => a - b)
  return {
    expected,
    delivered,
    deliveredBytes,
    latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]! },
    outOfOrder,
    wrongSize,
    closes,
    connectMs,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds,
    eventLoopUtilization: elu.utilization,
    senderLagMs: { p99: percentile(lag, 0.99), max: lag.length === 0 ? Number.NaN : lag[lag.length - 1]! },
    publisherBacklogBytes: publisherBacklog,
  }
}

process.on('message', (message: ToLoad) => {
  if (message.type === 'ack') {
    const resolve = acked
    acked = undefined
    resolve?.()
    return
  }
  run(message.plan).then(
    async (result) => await send({ type: 'result', result }),
    async (err: unknown) => await send({ type: 'error', message: (err as Error).stack ?? String(err) })
  ).finally(() => process.disconnect())
})
