import type { AddressInfo } from 'node:net'

/**
 * Where a person opens the web console of a node listening at `address`. A
 * wildcard address (0.0.0.0, ::) is no place to point a browser at, so it
 * becomes localhost, which the node answers on too.
 */
export function consoleUrl ({ address, family, port }: AddressInfo): string {
  const host = address === '0.0.0.0' || address === '::' ? 'localhost' : family === 'IPv6' ? `[${address}]` : address
  return `http://${host}:${port}/`
}
