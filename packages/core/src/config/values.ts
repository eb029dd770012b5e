import { makeValidator } from 'envalid'
import { parseTrustProxy, type TrustProxy } from '../http/trust-proxy.js'

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3,
}
const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

function parseWithUnits (input: string, units: Record<string, number>, what: string, example: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input)
  const factor = match ? units[match[2]!.toLowerCase()] : undefined
  if (!match || factor === undefined) {
    throw new Error(`"${input}" is not a ${what} (e.g. ${example})`)
  }
  return Math.round(Number(match[1]) * factor)
}

/** `10MB`, `64KB`, `512 B` or a plain number of bytes. */
export function parseSize (input: string): number {
  return parseWithUnits(input, SIZE_UNITS, 'size', '10MB, 64KB or 1048576')
}

/** `20s`, `500ms`, `1m`, `24h`, `30d` or a plain number of milliseconds. */
export function parseDuration (input: string): number {
  return parseWithUnits(input, DURATION_UNITS, 'duration', '20s, 500ms, 24h, 30d or 20000')
}

const positive = (parse: (input: string) => number) => makeValidator<number>((input) => {
  const value = parse(input)
  if (value <= 0) throw new Error(`"${input}" must be greater than zero`)
  return value
})
export const size = positive(parseSize)
export const duration = positive(parseDuration)
/** A duration where 0 means "off" (or "at once"). */
export const durationOrOff = makeValidator<number>(parseDuration)
export const count = makeValidator<number>((input) => {
  if (!/^\s*\d+\s*$/.test(input) || Number(input) < 1) throw new Error(`"${input}" is not a whole number >= 1`)
  return Number(input)
})
/** A TCP port; 0 asks the OS for a free one (tests, side-cars). */
export const listenPort = makeValidator<number>((input) => {
  const value = Number(input)
  if (!/^\s*\d+\s*$/.test(input) || value > 65535) throw new Error(`"${input}" is not a port (0-65535)`)
  return value
})
export const prefix = makeValidator<string>((input) => {
  if (/\s/.test(input)) throw new Error('must not contain white space')
  return input
})

export const trustProxy = makeValidator<TrustProxy>(parseTrustProxy)

/** `host:port,host:port`: the seeds of a Redis Cluster (REDIS_CLUSTER_NODES). */
export const hostPorts = makeValidator<Array<{ host: string, port: number }>>((input) => {
  const seeds = input.split(',').map((seed) => seed.trim()).filter((seed) => seed !== '')
  if (seeds.length === 0) throw new Error('expected host:port[,host:port…]')
  return seeds.map((seed) => {
    const match = /^(\[[0-9a-f:.]+\]|[^\s:/[\]]+):(\d{1,5})$/i.exec(seed)
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65535) throw new Error(`"${seed}" is not host:port`)
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
  })
})
