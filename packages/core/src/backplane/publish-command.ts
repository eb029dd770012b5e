import type { Socket } from 'node:net'
import { Command, type Redis } from 'ioredis'
import { envelopeBytes, writeEnvelope } from './envelope.js'
import type { Frame } from './types.js'

const CRLF = Buffer.from('\r\n')
/** Channels whose RESP prefix is kept; past this the cache starts over (a relay follows far fewer sessions at once). */
const PREFIX_CACHE_MAX = 10_000
const prefixes = new Map<string, Buffer>()

/** `*3 $7 PUBLISH $<n> <channel>` in RESP, cached per channel name. */
function commandPrefix (channel: string): Buffer {
  let prefix = prefixes.get(channel)
  if (prefix === undefined) {
    if (prefixes.size >= PREFIX_CACHE_MAX) prefixes.clear()
    prefix = Buffer.from(`*3\r\n$7\r\npublish\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`)
    prefixes.set(channel, prefix)
  }
  return prefix
}

/**
 * PUBLISH of one backplane frame, written as a single buffer: the command,
 * the channel and the envelope around the payload, which is copied once.
 * ioredis's own Command would have the envelope encoded first and then copy
 * it again into the RESP message (a CPU profile of the bench showed both
 * copies). The reply is what PUBLISH answers: the number of receivers.
 */
export class PublishCommand extends Command {
  readonly #wire: Buffer

  constructor (channel: string, origin: Buffer, frame: Frame) {
    const prefix = commandPrefix(channel)
    const bytes = envelopeBytes(frame)
    const head = `$${bytes}\r\n`
    const wire = Buffer.allocUnsafe(prefix.length + head.length + bytes + CRLF.length)
    let offset = prefix.copy(wire, 0)
    offset += wire.write(head, offset, 'latin1')
    writeEnvelope(wire, offset, origin, frame)
    CRLF.copy(wire, offset + bytes)
    // The arguments as ioredis would show them (MONITOR-style debugging, errors): views, no copy.
    super('publish', [channel, wire.subarray(offset, offset + bytes)])
    this.#wire = wire
  }

  override toWritable (): Buffer {
    return this.#wire
  }
}

const corked = new WeakSet<object>()

/**
 * PUBLISHes one frame on `redis`. The publishes of one turn of the event loop
 * (every publisher message read in it) leave in one write: the connection's
 * socket stays corked until the loop comes round (setImmediate runs after
 * this turn's I/O). One write syscall per frame was the relay's largest
 * entry in the profile of many small sessions.
 */
export function publishFrame (redis: Redis, channel: string, origin: Buffer, frame: Frame): Promise<unknown> {
  const stream = redis.stream as Socket
  if (!corked.has(stream)) {
    corked.add(stream)
    stream.cork()
    setImmediate(() => {
      corked.delete(stream)
      stream.uncork()
    })
  }
  return redis.sendCommand(new PublishCommand(channel, origin, frame)) as Promise<unknown>
}
