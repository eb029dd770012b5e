import type { FastifyPluginAsync } from 'fastify'
import { parseUuid, type Presence, type Session, type SessionStore } from '@streaming-service/core'
import { streamPath } from '@streaming-service/protocol'
import { wsBaseUrl } from '../ws-url.js'

export interface SessionRoutesOptions {
  sessions: SessionStore
  presence: Presence
  /** Closes the session's sockets on every relay (a backplane announcement). */
  onFinished: (sessionId: string) => void
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
  const { sessions, presence } = options
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
    const publisherOnline = session.status !== 'finished' && await presence.publisherOnline(session.id)
    return {
      session_id: session.id,
      client_id: session.clientId,
      status: session.status,
      ws_url: wsUrl(request, session),
      created_at: iso(session.createdAt),
      started_at: iso(session.startedAt),
      finished_at: iso(session.finishedAt),
      operators_count: session.operatorsCount,
      publisher_online: publisherOnline,
    }
  })

  app.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const session = await sessions.finish(parseUuid(request.params.id, 'session id'))
    // Repeated on every DELETE: a relay that missed the first one still closes its sockets.
    options.onFinished(session.id)
    request.log.info({ sessionId: session.id }, 'session finished')
    return reply.status(204).send()
  })

  app.get<{ Params: { id: string } }>('/sessions/:id/operators', async (request) => {
    const id = parseUuid(request.params.id, 'session id')
    const [operators, online] = await Promise.all([sessions.operators(id), presence.onlineOperators(id)])
    return {
      operators: operators.map((operator) => ({
        user_id: operator.userId,
        joined_at: iso(operator.joinedAt),
        online: online.has(operator.userId),
      })),
    }
  })
}
