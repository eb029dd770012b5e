import type { FastifyPluginAsync } from 'fastify'
import { parseUuid, type Session, type SessionStore } from '@streaming-service/core'
import { streamPath, wsBaseUrl } from '../ws-url.js'

export interface SessionRoutesOptions {
  sessions: SessionStore
  wsBaseUrl?: string
}

const createBody = {
  type: 'object',
  required: ['client_id'],
  additionalProperties: false,
  properties: {
    client_id: { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' },
  },
} as const

function iso (date: Date | null): string | null {
  return date === null ? null : date.toISOString()
}

/** SPEC §3 session resources. Never exposes the stream key except on create. */
export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app, options) => {
  const { sessions } = options
  const wsUrl = (request: Parameters<typeof wsBaseUrl>[0], session: Session) =>
    wsBaseUrl(request, options.wsBaseUrl) + streamPath(session.id, session.clientId)

  app.post<{ Body: { client_id: string } }>('/sessions', { schema: { body: createBody } }, async (request, reply) => {
    const { session, streamKey } = await sessions.create(request.body.client_id.toLowerCase())
    request.log.info({ sessionId: session.id, clientId: session.clientId }, 'session created')
    return reply.status(201).send({
      session_id: session.id,
      client_id: session.clientId,
      stream_key: streamKey,
      ws_url: wsUrl(request, session),
      status: session.status,
      created_at: iso(session.createdAt),
    })
  })

  app.get<{ Params: { id: string } }>('/sessions/:id', async (request) => {
    const session = await sessions.get(parseUuid(request.params.id, 'session id'))
    return {
      session_id: session.id,
      client_id: session.clientId,
      status: session.status,
      ws_url: wsUrl(request, session),
      created_at: iso(session.createdAt),
      started_at: iso(session.startedAt),
      finished_at: iso(session.finishedAt),
      operators_count: session.operatorsCount,
      // Presence arrives with the relay; until then "connected" is the status.
      publisher_online: session.status === 'active',
    }
  })

  app.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const session = await sessions.finish(parseUuid(request.params.id, 'session id'))
    request.log.info({ sessionId: session.id }, 'session finished')
    return reply.status(204).send()
  })

  app.get<{ Params: { id: string } }>('/sessions/:id/operators', async (request) => {
    const operators = await sessions.operators(parseUuid(request.params.id, 'session id'))
    return {
      operators: operators.map((operator) => ({
        user_id: operator.userId,
        joined_at: iso(operator.joinedAt),
        online: false,
      })),
    }
  })
}
