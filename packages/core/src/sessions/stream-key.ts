import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** 192 bits from the CSPRNG, base64url: 32 URL-safe characters. */
export function generateStreamKey (): string {
  return randomBytes(24).toString('base64url')
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
