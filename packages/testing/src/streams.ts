import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { waitFor } from './faults.js'
import type { ServiceProcess } from './process.js'
import { openSocket, type TestSocket } from './ws-client.js'

interface Teardown { teardown (fn: () => unknown): void }

/** An open test socket (rejects if it is closed before opening). */
export async function connected (t: Teardown, url: string, options: { headers?: Record<string, string> } = {}): Promise<TestSocket> {
  const socket = openSocket(t, url, options)
  await socket.opened
  return socket
}

/**
 * Operators subscribe asynchronously: waits until a probe from the publisher
 * reaches all of them, then forgets the probes.
 */
export async function primed (publisher: TestSocket, operators: TestSocket[]): Promise<void> {
  await waitFor('every operator to receive the probe', async () => {
    await publisher.send('probe')
    return operators.every((o) => o.messages.some((m) => !m.binary && m.data.toString() === 'probe'))
  }, 10_000, 100)
  const counts = operators.map((o) => o.messages.length)
  await publisher.send('probe-end')
  await waitFor('probe-end everywhere', () => operators.every((o, i) => o.messages.length > counts[i]! && o.messages.at(-1)!.data.toString() === 'probe-end'))
  for (const operator of operators) operator.messages.length = 0
}

/** The publisher sends 1 KB binary messages numbered 0, 1, 2… (uint32 at the front) at `perSecond`. */
export function sequenced (publisher: TestSocket, perSecond: number): { readonly sent: number, stop (): void } {
  let sent = 0
  const padding = randomBytes(1020)
  const timer = setInterval(() => {
    if (publisher.socket.readyState !== WebSocket.OPEN) return
    const message = Buffer.allocUnsafe(4 + padding.length)
    message.writeUInt32BE(sent++, 0)
    padding.copy(message, 4)
    publisher.socket.send(message)
  }, 1000 / perSecond)
  return { get sent () { return sent }, stop () { clearInterval(timer) } }
}

/** Sequence numbers of the binary messages a socket received, in order. */
export const sequenceNumbers = (socket: TestSocket): number[] => socket.messages.filter((m) => m.binary).map((m) => m.data.readUInt32BE(0))

export async function readyStatus (service: ServiceProcess): Promise<number> {
  return (await fetch(`${service.url}/ready`, { signal: AbortSignal.timeout(5000) })).status
}

/** The value of a metric on a service's /metrics (the sum over the series matching `labels`). */
export async function metric (service: ServiceProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
  let sum = 0
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const series = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([key, value]) => series[key] === value)) sum += Number(match[3])
  }
  return sum
}
