import type { FastifyPluginAsync } from 'fastify'
import { listSessions, parseUuid, type Presence, type SessionEventLog, type SessionStatus, type Sql } from '@streaming-service/core'
import type { SessionEventList, SessionPage } from '@streaming-service/protocol'
import { wsBaseUrl } from '../ws-url.js'
import { iso, viewOf } from './sessions.js'
import { sessionErrors, sessionEventList, sessionIdParams, sessionListQuery, sessionPage } from './schemas.js'

export interface SessionListRoutesOptions {
  sql: Sql
  events: SessionEventLog
  presence: Presence
  wsBaseUrl?: string
}

interface ListQuery { status?: SessionStatus, client_id?: string, limit?: string, cursor?: string }

const DEFAULT_LIMIT = 50

/** SPEC §12: the list of sessions and a session's event log. */
export const sessionListRoutes: FastifyPluginAsync<SessionListRoutesOptions> = async (app, options) => {
  const { events, presence } = options

  app.get<{ Querystring: ListQuery }>('/sessions', {
    schema: {
      summary: 'Sessions, newest first, a page at a time (keyset: pass next_cursor back as cursor)',
      tags: ['sessions'],
      querystring: sessionListQuery,
      response: { 200: sessionPage, 400: sessionErrors[400], 401: sessionErrors[401], 503: sessionErrors[503] },
    },
  }, async (request) => {
    const { status, client_id: clientId, limit, cursor } = request.query
    const page = await listSessions(options.sql, {
      limit: limit === undefined ? DEFAULT_LIMIT : Number(limit),
      ...(status === undefined ? {} : { status }),
      ...(clientId === undefined ? {} : { clientId: clientId.toLowerCase() }),
      ...(cursor === undefined ? {} : { cursor }),
    })
    const base = wsBaseUrl(request, options.wsBaseUrl)
    const body: SessionPage = {
      sessions: await Promise.all(page.sessions.map(async (session) => await viewOf(session, presence, base))),
      next_cursor: page.nextCursor,
    }
    return body
  })

  app.get<{ Params: { id: string } }>('/sessions/:id/events', {
    schema: {
      summary: 'A session\'s events in the order they happened, with their webhook delivery state',
      tags: ['sessions'],
      params: sessionIdParams,
      response: { 200: sessionEventList, ...sessionErrors },
    },
  }, async (request) => {
    const list = await events.list(parseUuid(request.params.id, 'session id'))
    const body: SessionEventList = {
      events: list.map((event) => ({
        id: event.id,
        type: event.type,
        session_id: event.sessionId,
        occurred_at: iso(event.occurredAt),
        data: event.data,
        delivery: { state: event.delivery, attempts: event.attempts, delivered_at: iso(event.deliveredAt), last_error: event.lastError },
      })),
    }
    return body
  })
}
