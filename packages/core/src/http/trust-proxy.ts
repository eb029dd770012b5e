import { isIP } from 'node:net'

/**
 * TRUST_PROXY (SPEC §10): which peers may set X-Forwarded-For/-Proto/-Host.
 * `false`: nobody (the default). A number: that many hops in front of every
 * request, whoever connects (only when nothing else can reach the port). A
 * list: peers whose address is one of these IPs or CIDR ranges, or in one of
 * proxy-addr's named ranges. createBaseApp hands it to Fastify's `trustProxy`.
 */
export type TrustProxy = false | number | readonly string[]

const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isAddressOrRange (entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true
  const [address = '', bits, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
}

/** `none`, a hop count (`1`), or `10.0.0.0/8, 192.0.2.7, ::1, loopback`-style lists. */
export function parseTrustProxy (input: string): TrustProxy {
  const value = input.trim()
  if (value === '' || value.toLowerCase() === 'none') return false
  if (/^\d+$/.test(value)) return Number(value) === 0 ? false : Number(value)
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  const invalid = entries.filter((entry) => !isAddressOrRange(entry))
  if (invalid.length > 0) {
    throw new Error(`${invalid.map((entry) => JSON.stringify(entry)).join(', ')}: not an IP address, a CIDR range (10.0.0.0/8), ` +
      'loopback, linklocal or uniquelocal; or give a hop count, or none')
  }
  return entries
}
