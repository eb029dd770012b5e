import type { FastifyRequest } from 'fastify'
import { bearerCredential, TokenForbiddenError, TokenInvalidError, type AuthMode, type OperatorClaims, type OperatorTokens } from '@streaming-service/core'

/** What a connection presented, read before the upgrade; a token is verified by then. */
export interface Credentials {
  /** `?stream_key=`, or a bearer credential that is not a JWT. */
  streamKey?: string
  /** The claims of a verified operator token (`?token=` or a bearer JWT). */
  token?: OperatorClaims
}

/** Three base64url parts: what a JWT looks like (a stream key never does). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

const queryValue = (query: unknown, name: string): string | undefined => {
  const value = (query as Record<string, unknown> | undefined)?.[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * Reads and checks a connection's credentials for `sessionId`/`userId`
 * (SPEC §9). In `token` mode an operator token is verified here, locally,
 * before any database work: missing, malformed, badly signed or expired →
 * SS_TOKEN_INVALID (4401); valid but for another session, user or role →
 * SS_TOKEN_FORBIDDEN (4403). Who is the publisher is only known after the
 * lookup: a stream key is checked there (admission.ts). In `open` mode tokens
 * are not required and not read.
 */
export async function readCredentials (
  request: FastifyRequest, sessionId: string, userId: string, mode: AuthMode, tokens: OperatorTokens | undefined
): Promise<Credentials> {
  const bearer = bearerCredential(request.headers.authorization)
  const bearerIsToken = bearer !== undefined && JWT_SHAPE.test(bearer)
  const streamKey = queryValue(request.query, 'stream_key') ?? (bearerIsToken ? undefined : bearer)
  if (mode === 'open') return streamKey === undefined ? {} : { streamKey }

  const token = queryValue(request.query, 'token') ?? (bearerIsToken ? bearer : undefined)
  if (token === undefined) {
    // Perhaps the publisher: admission decides once it knows the session's client id.
    if (streamKey !== undefined) return { streamKey }
    throw new TokenInvalidError('missing: send ?token= or Authorization: Bearer <token>')
  }
  if (tokens === undefined) throw new TokenInvalidError('no key to verify tokens with')
  const claims = await tokens.verify(token)
  if (claims.sid !== sessionId) throw new TokenForbiddenError('issued for another session')
  if (claims.sub !== userId) throw new TokenForbiddenError('issued for another user id')
  if (claims.role !== 'operator') throw new TokenForbiddenError(`role "${claims.role}" is not operator`)
  return { ...(streamKey === undefined ? {} : { streamKey }), token: claims }
}
