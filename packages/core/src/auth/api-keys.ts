import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * API_KEYS: the platform backend's credentials for the REST API. Several may
 * be valid at once, so a key can be rotated without downtime. A presented key
 * is compared with every configured one, in constant time over fixed-length
 * digests, so neither which key matched nor how much of it did leaks through
 * timing.
 */
export class ApiKeys {
  readonly #digests: Buffer[]

  constructor (keys: readonly string[]) {
    this.#digests = keys.map(digest)
  }

  matches (presented: string | undefined): boolean {
    if (presented === undefined || presented === '') return false
    const candidate = digest(presented)
    let matched = false
    for (const key of this.#digests) matched = timingSafeEqual(candidate, key) || matched
    return matched
  }
}

/** The credential of an `Authorization: Bearer <credential>` header, if that is what the header holds. */
export function bearerCredential (header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header
  const match = value === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value)
  return match?.[1]
}
