import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import {
  InvalidWebhookUrlError, parseUuid, webhookUrlProblem, type Presence, type Session, type SessionStore, type WebhookConfig,
} from '@streaming-service/core'
import { streamPath, type CreatedSession, type SessionView } from '@streaming-service/protocol'
import { wsBaseUrl } from '../ws-url.js'
import { createdSession, createSessionBody, sessionErrors, sessionIdParams, sessionView } from './schemas.js'

export interface SessionRoutesOptions {
  sessions: SessionStore
  presence: Presence
  /** Closes the session's sockets on every relay (a backplane announcement). */
  onFinished: (sessionId: string) => void
  wsBaseUrl?: string
  /** What a session's webhook_url may be (SPEC §12). */
  webhooks: WebhookConfig
}

export function iso (date: Date): string
export function iso (date: Date | null): string | null
export function iso (date: Date | null): string | null {
  return date === null ? null : date.toISOString()
}

/** `GET /sessions/:id` and the items of `GET /sessions`: never the stream key. */
export async function viewOf (session: Session, presence: Presence, wsBase: string): Promise<SessionView> {
  const publisherOnline = session.status !== 'finished' && await presence.publisherOnline(session.id)
  return {
    session_id: session.id,
    client_id: session.clientId,
    status: session.status,
    ws_url: wsBase + streamPath(session.id, session.clientId),
    created_at: iso(session.createdAt),
    started_at: iso(session.startedAt),
    finished_at: iso(session.finishedAt),
    operators_count: session.operatorsCount,
    publisher_online: publisherOnline,
  }
}

/** SPEC §3 session resources. Never exposes the stream key except on create. */
export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app, options) => {
  const { sessions, presence } = options
  const wsUrl = (request: FastifyRequest, session: Session) => wsBaseUrl(request, options.wsBaseUrl) + streamPath(session.id, session.clientId)

  app.post<{ Body: { client_id: string, webhook_url?: string } }>('/sessions', {
    schema: {
      summary: 'Create a session',
      tags: ['sessions'],
      body: createSessionBody,
      response: { 201: createdSession, 400: sessionErrors[400], 401: sessionErrors[401], 503: sessionErrors[503] },
    },
  }, async (request, reply) => {
    const webhookUrl = request.body.webhook_url
    const problem = webhookUrl === undefined ? undefined : webhookUrlProblem(webhookUrl, options.webhooks)
    if (problem !== undefined) throw new InvalidWebhookUrlError(problem)
    const { session, streamKey } = await sessions.create(request.body.client_id.toLowerCase(), webhookUrl)
    request.log.info({ sessionId: session.id, clientId: session.clientId }, 'session created')
    const body: CreatedSession = {
      session_id: session.id,
      client_id: session.clientId,
      stream_key: streamKey,
      ws_url: wsUrl(request, session),
      status: 'waiting',
      created_at: iso(session.createdAt),
    }
    return await reply.status(201).send(body)
  })

  app.get<{ Params: { id: string } }>('/sessions/:id', {
    schema: { summary: 'A session, without its stream key', tags: ['sessions'], params: sessionIdParams, response: { 200: sessionView, ...sessionErrors } },
  }, async (request) => {
    const session = await sessions.get(parseUuid(request.params.id, 'session id'))
    return await viewOf(session, presence, wsBaseUrl(request, options.wsBaseUrl))
  })

  app.delete<{ Params: { id: string } }>('/sessions/:id', {
    schema: {
      summary: 'Finish a session: every socket of it closes (4410); repeating it is fine',
      tags: ['sessions'],
      params: sessionIdParams,
      response: { 204: { type: 'null', description: 'Finished' }, ...sessionErrors },
    },
  }, async (request, reply) => {
    const session = await sessions.finish(parseUuid(request.params.id, 'session id'))
    // Repeated on every DELETE: a relay that missed the first one still closes its sockets.
    options.onFinished(session.id)
    request.log.info({ sessionId: session.id }, 'session finished')
    return await reply.status(204).send()
  })
}
