import { BackplaneUnavailableError } from '../errors.js'
import { BackplaneBase, type BackplaneBaseOptions } from './base.js'
import type { Frame } from './types.js'

/**
 * The in-process transport: what Redis is to a cluster, for nodes living in
 * one process (the single-node `api`, and tests that run several "nodes"
 * side by side). Channels are named exactly as on Redis.
 */
export class MemoryBus {
  readonly #channels = new Map<string, Set<MemoryBackplane>>()

  /** Like `PUBSUB NUMSUB channel`: how many nodes subscribe to it. */
  subscribers (channel: string): number {
    return this.#channels.get(channel)?.size ?? 0
  }

  /** Like `PUBSUB CHANNELS prefix*`: the channels with subscribers, sorted. */
  channels (prefix = ''): string[] {
    return [...this.#channels.keys()].filter((channel) => channel.startsWith(prefix)).sort()
  }

  /** @internal */
  attach (channel: string, node: MemoryBackplane): void {
    let nodes = this.#channels.get(channel)
    if (nodes === undefined) {
      nodes = new Set()
      this.#channels.set(channel, nodes)
    }
    nodes.add(node)
  }

  /** @internal */
  detach (channel: string, node: MemoryBackplane): void {
    const nodes = this.#channels.get(channel)
    if (nodes === undefined) return
    nodes.delete(node)
    if (nodes.size === 0) this.#channels.delete(channel)
  }

  /**
   * Delivers asynchronously, in publish order (one microtask per publish,
   * microtasks run FIFO), to the nodes subscribed at delivery time, never to
   * the publisher itself. The frame is shared, not copied.
   */
  /** @internal */
  post (channel: string, frame: Frame, from: MemoryBackplane, done: () => void): void {
    queueMicrotask(() => {
      const nodes = this.#channels.get(channel)
      if (nodes !== undefined) {
        for (const node of nodes.size === 1 ? nodes : [...nodes]) {
          if (node !== from) node.receive(channel, frame, from.nodeId)
        }
      }
      done()
    })
  }
}

export interface MemoryBackplaneOptions extends BackplaneBaseOptions {
  /** The bus shared by the nodes of one "cluster"; a private one by default (a single node). */
  bus?: MemoryBus
}

/** A node on a MemoryBus. Same contract as the Redis backplane; always ready until closed. */
export class MemoryBackplane extends BackplaneBase {
  readonly kind = 'memory' as const
  readonly bus: MemoryBus

  constructor (options: MemoryBackplaneOptions) {
    super(options)
    this.bus = options.bus ?? new MemoryBus()
  }

  async ready (): Promise<void> {
    if (this.closed) throw new BackplaneUnavailableError('closed')
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const channel of this.sessions.keys()) this.bus.detach(channel, this)
    this.sessions.clear()
  }

  /** @internal */
  receive (channel: string, frame: Frame, origin: string): void {
    const session = this.sessions.get(channel)
    if (session !== undefined) this.deliver(session, frame, origin)
  }

  protected connected (): boolean {
    return true
  }

  protected transmit (channel: string, frame: Frame, bytes: number): void {
    this.bus.post(channel, frame, this, () => this.settle(bytes))
  }

  protected async subscribeChannel (channel: string): Promise<void> {
    this.bus.attach(channel, this)
  }

  protected unsubscribeChannel (channel: string): void {
    this.bus.detach(channel, this)
  }
}
