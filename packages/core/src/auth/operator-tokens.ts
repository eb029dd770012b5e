import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { errors, jwtVerify, SignJWT } from 'jose'
import { USER_ID_PATTERN, UUID_PATTERN } from '@streaming-service/protocol'
import { TokenInvalidError, TokensNotConfiguredError } from '../errors.js'

/** The claims of an operator token (SPEC §9): the whole contract with a backend that mints its own. */
export interface OperatorClaims {
  /** The session id. */
  sid: string
  /** The operator's user id; the stream path's user id must equal it. */
  sub: string
  role: 'operator' | string
  /** Seconds since the epoch. */
  iat: number
  exp: number
  jti?: string
}

export type TokenAlgorithm = 'HS256' | 'ES256' | 'RS256'

/** Longest validity a token may have: exp at most this far ahead. */
export const MAX_TOKEN_TTL_MS = 24 * 3_600_000
/** Clocks of the minting backend and the relays may disagree this much. */
const CLOCK_TOLERANCE_S = 30

export interface TokenKeys {
  /** AUTH_JWT_SECRET (HS256), at least 32 bytes. */
  secret?: string
  /** AUTH_JWT_PUBLIC_KEY: a PEM public key, EC P-256 (ES256) or RSA (RS256). */
  publicKey?: string
  /** AUTH_JWT_PRIVATE_KEY: its private key, only for minting with ES256/RS256. */
  privateKey?: string
}

/** Whatever a verifier was given, how it tells: ES256 for P-256 keys, RS256 for RSA keys. */
function asymmetricAlgorithm (key: KeyObject): TokenAlgorithm {
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new TypeError(`AUTH_JWT_PUBLIC_KEY must be an RSA or EC P-256 key, got ${key.asymmetricKeyType ?? 'unknown'}`)
}

/**
 * Verifies (and, with a signing key, mints) operator tokens: JWTs signed
 * with HS256 and AUTH_JWT_SECRET, or ES256/RS256 verified with
 * AUTH_JWT_PUBLIC_KEY. Verification is local (no database): signature with
 * exactly the configured algorithm (so `alg: none` and algorithm confusion
 * fail), `exp` required and at most 24 h ahead, `iat`, `sid`, `sub`, `role`
 * present and well-formed. Whether the claims grant a given connection is the
 * caller's question (see `grants`).
 */
export class OperatorTokens {
  readonly algorithm: TokenAlgorithm
  readonly #verifyKey: Uint8Array | KeyObject
  readonly #signKey: Uint8Array | KeyObject | undefined

  constructor (keys: TokenKeys) {
    if (keys.secret !== undefined) {
      this.algorithm = 'HS256'
      this.#verifyKey = this.#signKey = new TextEncoder().encode(keys.secret)
    } else if (keys.publicKey !== undefined) {
      const publicKey = createPublicKey(keys.publicKey)
      this.algorithm = asymmetricAlgorithm(publicKey)
      this.#verifyKey = publicKey
      this.#signKey = keys.privateKey === undefined ? undefined : createPrivateKey(keys.privateKey)
    } else {
      throw new TypeError('operator tokens need AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY')
    }
  }

  /** Whether this service can mint tokens itself (always with a secret; with a key pair only given the private key). */
  get canMint (): boolean { return this.#signKey !== undefined }

  /** The token's claims; throws SS_TOKEN_INVALID (401 / close 4401) saying why not. */
  async verify (token: string): Promise<OperatorClaims> {
    let payload: Record<string, unknown>
    try {
      ({ payload } = await jwtVerify(token, this.#verifyKey, {
        algorithms: [this.algorithm],
        requiredClaims: ['exp', 'iat', 'sid', 'sub', 'role'],
        clockTolerance: CLOCK_TOLERANCE_S,
      }))
    } catch (err) {
      throw new TokenInvalidError(err instanceof errors.JWTExpired ? 'expired' : describe(err), { cause: err })
    }
    const { sid, sub, role, iat, exp, jti } = payload
    if (typeof exp !== 'number' || exp * 1000 > Date.now() + MAX_TOKEN_TTL_MS + CLOCK_TOLERANCE_S * 1000) {
      throw new TokenInvalidError('exp is more than 24 h ahead')
    }
    if (typeof iat !== 'number') throw new TokenInvalidError('iat is not a number')
    if (typeof sid !== 'string' || !UUID_PATTERN.test(sid)) throw new TokenInvalidError('sid is not a session id')
    if (typeof sub !== 'string' || !USER_ID_PATTERN.test(sub)) throw new TokenInvalidError('sub is not a user id')
    if (typeof role !== 'string') throw new TokenInvalidError('role is not a string')
    if (jti !== undefined && typeof jti !== 'string') throw new TokenInvalidError('jti is not a string')
    return { sid: sid.toLowerCase(), sub, role, iat, exp, ...(jti === undefined ? {} : { jti }) }
  }

  /** A token for `userId` on `sessionId`, valid for `ttlMs` (at most 24 h). */
  async mint (sessionId: string, userId: string, ttlMs: number): Promise<{ token: string, expiresAt: Date }> {
    if (this.#signKey === undefined) throw new TokensNotConfiguredError('AUTH_JWT_PRIVATE_KEY is not set: this service verifies tokens but cannot mint them')
    const now = Math.floor(Date.now() / 1000)
    const exp = now + Math.floor(Math.min(ttlMs, MAX_TOKEN_TTL_MS) / 1000)
    const token = await new SignJWT({ sid: sessionId, role: 'operator' })
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.#signKey)
    return { token, expiresAt: new Date(exp * 1000) }
  }
}

/** jose's reason without the token (its messages never carry it, but keep them short). */
function describe (err: unknown): string {
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature'
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim}: ${err.reason}`
  if (err instanceof errors.JOSEError) return 'malformed'
  return 'malformed'
}
