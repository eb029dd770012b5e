import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Registry } from 'prom-client'
import { WebSocketServer, type WebSocket } from 'ws'
import { createLogger, MemoryBackplane, MemoryBus, type Backplane, type Frame, type FrameHandler } from '@streaming-service/core'
import { openSocket, type TestSocket } from '@streaming-service/testing'
import { Hub } from '../src/hub.js'
import { createRelayMetrics } from '../src/metrics.js'
import { OperatorSink } from '../src/operator-sink.js'

interface Teardown { teardown (fn: () => unknown): void }

const logger = createLogger('silent', 'hub-test')

/** One relay node in this process: a Hub on a MemoryBackplane of the shared bus. */
export interface TestNode {
  hub: Hub
  backplane: Backplane
  /** The node's metrics registry (what its /metrics would show). */
  registry: Registry
  /** A new operator of the session on this node, on a real socket; the client side records what it gets. */
  operator (sessionId: string): Promise<TestSocket>
  /** A new publisher connection with `epoch` on this node; `send` hands a message to the hub as its socket would. */
  publisher (sessionId: string, epoch: number): Promise<TestPublisher>
}

export interface TestPublisher {
  client: TestSocket
  send (payload: Buffer | string): void
  detach (): void
}

/**
 * Several relay nodes in one process, on one MemoryBus (what Redis is to a
 * cluster). Operators and publishers sit on real WebSocket connections to a
 * local server, so the sinks write to real sockets.
 */
export async function inProcessCluster (t: Teardown): Promise<{ bus: MemoryBus, node (options?: { lossy?: Lossy }): TestNode }> {
  const bus = new MemoryBus()
  const pair = await socketPairs(t)
  const node = (options: { lossy?: Lossy } = {}): TestNode => {
    const memory = new MemoryBackplane({ bus, keyPrefix: 'hub-test:', logger })
    t.teardown(async () => { await memory.close() })
    const backplane = options.lossy === undefined ? memory : new LossyBackplane(memory, options.lossy)
    const registry = new Registry()
    const hub = new Hub({ backplane, metrics: createRelayMetrics(registry), logger })
    return {
      hub,
      backplane,
      registry,
      async operator (sessionId) {
        const { server, client } = await pair()
        const sink = new OperatorSink(server, {
          maxBufferedBytes: 8 * 1024 * 1024, maxLagMs: 5000, onDrop: () => {}, onSent: () => {}, onTooSlow: () => {},
        })
        const detach = hub.attachOperator(sessionId, sink)
        server.once('close', detach)
        return client
      },
      async publisher (sessionId, epoch) {
        const { server, client } = await pair()
        const detach = hub.attachPublisher(sessionId, epoch, server)
        server.once('close', detach)
        return {
          client,
          send: (payload) => hub.publish(sessionId, typeof payload === 'string' ? Buffer.from(payload) : payload, typeof payload !== 'string'),
          detach,
        }
      },
    }
  }
  return { bus, node }
}

/** Connected WebSocket pairs on a local server: the server side for the hub, the client side for the test. */
async function socketPairs (t: Teardown): Promise<() => Promise<{ server: WebSocket, client: TestSocket }>> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await once(wss, 'listening')
  t.teardown(async () => {
    for (const socket of wss.clients) socket.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`
  // One pair at a time, so the next connection is the client just opened.
  let queue = Promise.resolve()
  return async () => {
    const made = queue.then(async () => {
      const server = once(wss, 'connection') as Promise<[WebSocket]>
      const client = openSocket(t, url)
      await client.opened
      return { server: (await server)[0], client }
    })
    queue = made.then(() => {}, () => {})
    return await made
  }
}

/** Which frames a lossy node loses on the way in: `drop(frame)` true loses it. */
export type Lossy = (frame: Frame) => boolean

/** A node's backplane that loses chosen inbound frames (what a Redis hiccup does). */
class LossyBackplane implements Backplane {
  readonly #inner: Backplane
  readonly #drop: Lossy
  constructor (inner: Backplane, drop: Lossy) {
    this.#inner = inner
    this.#drop = drop
  }

  get nodeId (): string { return this.#inner.nodeId }
  get kind (): Backplane['kind'] { return this.#inner.kind }
  get writable (): boolean { return this.#inner.writable }
  publish (sessionId: string, frame: Frame): boolean { return this.#inner.publish(sessionId, frame) }
  subscribe (sessionId: string, handler: FrameHandler): () => void {
    return this.#inner.subscribe(sessionId, (frame, origin) => { if (!this.#drop(frame)) handler(frame, origin) })
  }

  async whenSubscribed (sessionId: string): Promise<void> { await this.#inner.whenSubscribed(sessionId) }
  async whenWritable (): Promise<void> { await this.#inner.whenWritable() }
  async ready (): Promise<void> { await this.#inner.ready() }
  stats (): ReturnType<Backplane['stats']> { return this.#inner.stats() }
  async close (): Promise<void> { await this.#inner.close() }
}
