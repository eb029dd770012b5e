import { ebmlElement, webmInit, webmKeyClusterStart, type Cluster, type TestSocket } from '@streaming-service/testing'

/** Keyslot and master of a session's channel, as the cluster backplane names it. */
export const sessionChannel = (cluster: Cluster, sessionId: string): string => `${cluster.env.REDIS_KEY_PREFIX!}session:{${sessionId}}`

/**
 * A WebM stream for a relay: the init segment, then one message per cluster
 * (a keyframe, then a Void element carrying the message's number), so an
 * operator's messages can be checked for continuity.
 */
export function webmStream (): { init: Buffer, cluster: (n: number) => Buffer } {
  return {
    init: webmInit(),
    cluster (n) {
      const number = Buffer.alloc(4)
      number.writeUInt32BE(n)
      return Buffer.concat([webmKeyClusterStart(), ebmlElement(0xec, number, 1)])
    },
  }
}

/** The numbers of the WebM clusters an operator received (messages ending with the numbered Void element). */
export function clusterNumbers (socket: TestSocket): number[] {
  const numbers: number[] = []
  for (const { data, binary } of socket.messages) {
    if (!binary || data.length < 6 || data[data.length - 6] !== 0xec || data[data.length - 5] !== 0x84) continue
    numbers.push(data.readUInt32BE(data.length - 4))
  }
  return numbers
}

export const EBML_MAGIC = Buffer.from('1a45dfa3', 'hex')
