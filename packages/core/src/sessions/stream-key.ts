import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * 192 bits from the CSPRNG, base64url: 32 URL-safe characters. Never one
 * that starts with `-`: command lines read `--stream-key -abc…` as two
 * options (Python's argparse does). Drawing again keeps the others uniform.
 */
export function generateStreamKey (): string {
  for (;;) {
    const key = randomBytes(24).toString('base64url')
    if (!key.startsWith('-')) return key
  }
}

/**
 * Stream keys are random and long, so a fast hash is enough: no dictionary or
 * brute-force attack against 192 bits is helped by a slow KDF.
 */
export function hashStreamKey (key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest()
}

/** Constant-time comparison of a presented key with the stored hash. */
export function verifyStreamKey (presented: string | undefined, storedHash: Buffer): boolean {
  const candidate = hashStreamKey(presented ?? '')
  return storedHash.length === candidate.length && timingSafeEqual(candidate, storedHash) && presented !== undefined
}
