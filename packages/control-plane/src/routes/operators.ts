import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import {
  InvalidBodyError, MAX_TOKEN_TTL_MS, parseDuration, parseUserId, parseUuid, SessionFinishedError, TokensNotConfiguredError,
  type OperatorStore, type OperatorTokens, type Presence, type SessionStore,
} from '@streaming-service/core'
import { streamUrl, type OperatorList } from '@streaming-service/protocol'
import { wsBaseUrl } from '../ws-url.js'
import { iso } from './sessions.js'
import { mintedToken, mintTokenBody, operatorList, operatorParams, sessionErrors, sessionIdParams } from './schemas.js'

export interface OperatorRoutesOptions {
  sessions: SessionStore
  operators: OperatorStore
  presence: Presence
  /** Mints operator tokens; undefined when no key is configured. */
  tokens: OperatorTokens | undefined
  /** Closes the operator's sockets on every relay (4403). */
  onRevoked: (sessionId: string, userId: string) => void
  wsBaseUrl?: string
}

const DEFAULT_TOKEN_TTL_MS = 3_600_000

function tokenTtl (ttl: string | undefined): number {
  if (ttl === undefined) return DEFAULT_TOKEN_TTL_MS
  let ms: number
  try {
    ms = parseDuration(ttl)
  } catch (err) {
    throw new InvalidBodyError(`ttl: ${(err as Error).message}`)
  }
  if (ms < 1000 || ms > MAX_TOKEN_TTL_MS) throw new InvalidBodyError('ttl: from 1s to 24h')
  return ms
}

/** SPEC §3 and §9: a session's operators, revoking one, and minting operator tokens. */
export const operatorRoutes: FastifyPluginAsync<OperatorRoutesOptions> = async (app, options) => {
  const { sessions, operators, presence } = options
  const base = (request: FastifyRequest) => wsBaseUrl(request, options.wsBaseUrl)

  app.get<{ Params: { id: string } }>('/sessions/:id/operators', {
    schema: { summary: 'Operators in join order, with whether they are online', tags: ['operators'], params: sessionIdParams, response: { 200: operatorList, ...sessionErrors } },
  }, async (request) => {
    const id = parseUuid(request.params.id, 'session id')
    const [list, online] = await Promise.all([operators.list(id), presence.onlineOperators(id)])
    const body: OperatorList = {
      operators: list.map((operator) => ({ user_id: operator.userId, joined_at: iso(operator.joinedAt), online: online.has(operator.userId) })),
    }
    return body
  })

  app.delete<{ Params: { id: string, user_id: string } }>('/sessions/:id/operators/:user_id', {
    schema: {
      summary: 'Revoke an operator: its sockets close (4403) everywhere, it leaves the list, its tokens issued until now are refused',
      tags: ['operators'],
      params: operatorParams,
      response: { 204: { type: 'null', description: 'Revoked' }, ...sessionErrors },
    },
  }, async (request, reply) => {
    const id = parseUuid(request.params.id, 'session id')
    const userId = parseUserId(request.params.user_id)
    const revokedAt = await operators.revoke(id, userId)
    options.onRevoked(id, userId)
    request.log.info({ sessionId: id, userId, revokedAt }, 'operator revoked')
    return await reply.status(204).send()
  })

  app.post<{ Params: { id: string }, Body: { user_id: string, ttl?: string } }>('/sessions/:id/tokens', {
    schema: {
      summary: 'Mint an operator token (and the ws_url that carries it)',
      description: 'A backend may mint the same JWT itself: HS256 with AUTH_JWT_SECRET, claims sid, sub, role "operator", iat, exp (at most 24 h ahead), optional jti.',
      tags: ['operators'],
      params: sessionIdParams,
      body: mintTokenBody,
      response: { 201: mintedToken, ...sessionErrors, 409: sessionErrors[400], 501: sessionErrors[400] },
    },
  }, async (request, reply) => {
    const id = parseUuid(request.params.id, 'session id')
    const userId = parseUserId(request.body.user_id)
    const ttlMs = tokenTtl(request.body.ttl)
    if (options.tokens === undefined) throw new TokensNotConfiguredError('set AUTH_JWT_SECRET (or AUTH_JWT_PUBLIC_KEY and AUTH_JWT_PRIVATE_KEY)')
    const session = await sessions.get(id)
    if (session.status === 'finished') throw new SessionFinishedError(id)
    const { token, expiresAt } = await options.tokens.mint(id, userId, ttlMs)
    request.log.info({ sessionId: id, userId, expiresAt }, 'operator token minted')
    return await reply.status(201).send({
      token,
      ws_url: streamUrl({ base: base(request), sessionId: id, userId, token }),
      expires_at: expiresAt.toISOString(),
    })
  })
}
