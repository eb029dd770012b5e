import type { FastifyBaseLogger as Logger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import websocket from '@fastify/websocket'
import type WebSocket from 'ws'
import {
  BadRequestError, errorBody, isServiceError, parseUserId, parseUuid, SessionFinishedError, UpgradeRequiredError, type Config, type OperatorTokens,
} from '@streaming-service/core'
import { CloseCode, CloseReason, closeReason, STREAM_ROUTE } from '@streaming-service/protocol'
import type { Admission, Ticket } from './admission.js'
import { readCredentials } from './credentials.js'
import { handshakeProblem } from './handshake.js'
import type { Hub } from './hub.js'
import { closeCodeLabel, type RelayMetrics } from './metrics.js'
import { OperatorSink } from './operator-sink.js'
import { limitIncomingMessages } from './peer-limits.js'

export interface RelaySocketOptions {
  config: Readonly<Config>
  hub: Hub
  admission: Admission
  /** Verifies operator tokens (token mode, or whenever a key is configured). */
  tokens: OperatorTokens | undefined
  metrics: RelayMetrics
}

type Refusal = { code: number, reason: string }

/** For /openapi.json: admission checks the ids itself, so a refusal is a close code, never a 400. */
const streamRouteSchema = {
  summary: 'The stream (WebSocket upgrade): publisher with ?stream_key= or Authorization: Bearer <stream key>; operators with ?token= or Authorization: Bearer <token> in token mode',
  description: `Refusals are close codes after the upgrade (SPEC §5): ${[
    CloseCode.badRequest, CloseCode.unauthorized, CloseCode.forbidden, CloseCode.notFound, CloseCode.conflict, CloseCode.finished, CloseCode.tryAgainLater,
  ].join(', ')}; ${CloseCode.tooLarge} for a message too large; ${CloseCode.tooSlow} for an operator too slow; ${CloseCode.streamRestarted} for a restarted stream.`,
  tags: ['stream'],
  security: [{ operatorToken: [] }],
  params: {
    type: 'object',
    properties: {
      sessionId: { type: 'string', description: 'Session id (UUID)' },
      userId: { type: 'string', description: 'The session\'s client id (publisher) or an operator\'s user id' },
    },
  },
  response: { 101: { description: 'Switching protocols to WebSocket', type: 'null' } },
}
const kAdmission = Symbol('admission')

declare module 'fastify' {
  interface FastifyRequest {
    [kAdmission]?: Ticket | Refusal
  }
}

function refusal (err: unknown): Refusal {
  if (isServiceError(err) && err.closeCode !== undefined) return { code: err.closeCode, reason: closeReason(err.message) }
  return { code: CloseCode.internalError, reason: 'internal error' }
}

/** Liveness: every socket must answer each ping before the next one. */
function keepAlive (sockets: Set<WebSocket>, alive: WeakSet<WebSocket>, intervalMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const socket of sockets) {
      if (!alive.has(socket)) {
        socket.terminate()
        continue
      }
      alive.delete(socket)
      socket.ping()
    }
  }, intervalMs)
  timer.unref()
  return timer
}

/**
 * `GET /ws/stream/:sessionId/:userId` (SPEC §5). Admission runs before the
 * upgrade; refusals are delivered after it as close codes with a reason, so
 * browsers can see them.
 */
export const relaySockets: FastifyPluginAsync<RelaySocketOptions> = async (app, options) => {
  const { hub, admission, metrics } = options
  const { presence, readiness } = app
  const { ws: limits } = options.config
  const sockets = new Set<WebSocket>()
  /** Requests between admission and the upgrade handler: they count against WS_MAX_CONNECTIONS too. */
  const admitting = new Set<FastifyRequest>()
  const alive = new WeakSet<WebSocket>()
  const pinger = keepAlive(sockets, alive, limits.pingIntervalMs)
  const { traffic } = metrics
  // Bound once: incremented per message per operator.
  const dropped = { slow_operator: metrics.dropped.labels('slow_operator'), keyframe_skip: metrics.dropped.labels('keyframe_skip') }

  await app.register(websocket, {
    // WS_MAX_MESSAGE_SIZE: a larger message closes the publisher (tooLarge), nothing of it relayed.
    options: { maxPayload: limits.maxMessageSize, perMessageDeflate: false },
    preClose: async function () {
      clearInterval(pinger)
      const closed = [...sockets].map(async (socket) => await new Promise<void>((resolve) => {
        socket.once('close', () => resolve())
        socket.close(CloseCode.goingAway, CloseReason.shuttingDown)
        setTimeout(() => { socket.terminate(); resolve() }, 2000).unref()
      }))
      await Promise.all(closed)
    },
  })

  // @fastify/websocket hides its routes from the OpenAPI document; the stream route is part of the API.
  app.addHook('onRoute', (route) => {
    if (route.websocket === true && route.schema !== undefined) route.schema.hide = false
  })

  const admit = async (request: FastifyRequest<{ Params: { sessionId: string, userId: string } }>, reply: FastifyReply) => {
    // Only upgrades are admitted: a plain GET must not mark a session active or register an operator.
    if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
      return await reply.status(426).header('upgrade', 'websocket').send(errorBody(new UpgradeRequiredError()))
    }
    const problem = handshakeProblem(request.headers)
    if (problem !== undefined) return await reply.status(400).send(errorBody(new BadRequestError(problem)))
    if (readiness.draining) {
      request[kAdmission] = { code: CloseCode.goingAway, reason: CloseReason.draining }
      return
    }
    if (sockets.size + admitting.size >= limits.maxConnections) {
      request[kAdmission] = { code: CloseCode.tryAgainLater, reason: CloseReason.nodeFull }
      return
    }
    // Released by the upgrade handler, or when the client goes away before it.
    admitting.add(request)
    request.raw.socket.once('close', () => admitting.delete(request))
    try {
      const sessionId = parseUuid(request.params.sessionId, 'session id')
      const userId = parseUserId(request.params.userId)
      if (hub.isFinished(sessionId)) throw new SessionFinishedError(sessionId)
      const credentials = await readCredentials(request, sessionId, userId, options.config.auth.mode, options.tokens)
      request[kAdmission] = await admission.admit(sessionId, userId, credentials)
    } catch (err) {
      const refused = refusal(err)
      if (refused.code === CloseCode.internalError || refused.code === CloseCode.tryAgainLater) request.log.warn({ err }, 'admission failed')
      request[kAdmission] = refused
    }
  }

  app.get<{ Params: { sessionId: string, userId: string } }>(
    STREAM_ROUTE,
    { websocket: true, preValidation: admit, schema: streamRouteSchema },
    (socket, request) => {
      admitting.delete(request)
      const admitted = request[kAdmission]
      if (admitted === undefined || !('role' in admitted)) {
        const { code, reason } = admitted ?? { code: CloseCode.internalError, reason: 'not admitted' }
        metrics.disconnects.inc({ role: 'refused', code: closeCodeLabel(code) })
        request.log.info({ closeCode: code, reason }, 'websocket refused')
        socket.close(code, reason)
        return
      }
      sockets.add(socket)
      alive.add(socket)
      socket.on('pong', () => alive.add(socket))
      const log = request.log.child({ sessionId: admitted.sessionId, role: admitted.role })
      metrics.connections.inc({ role: admitted.role })
      // Operators only receive: anything but a small control message is refused as it starts arriving.
      if (admitted.role === 'operator') limitIncomingMessages(socket, limits.operatorMaxMessage)
      const sink = admitted.role === 'operator' ? operatorSink(socket, admitted, log) : undefined
      const detach = admitted.role === 'publisher' ? onPublisher(socket, admitted, log) : hub.attachOperator(admitted.sessionId, sink!)
      const leave = presence.enter(admitted.sessionId, admitted.role, admitted.role === 'publisher' ? admitted.clientId : admitted.userId)
      log.info({ epoch: admitted.role === 'publisher' ? admitted.epoch : undefined }, 'websocket connected')
      socket.once('close', (code, reason) => {
        sockets.delete(socket)
        detach()
        leave()
        if (admitted.role === 'operator') admission.operatorLeft(admitted).catch((err: unknown) => log.warn({ err }, 'could not record operator.left'))
        metrics.connections.dec({ role: admitted.role })
        // A stalled operator cut off (tooSlow) never echoes it: count what was sent.
        metrics.disconnects.inc({ role: admitted.role, code: closeCodeLabel(sink?.cutOff === true ? CloseCode.tooSlow : code) })
        log.info({ closeCode: code, reason: reason.toString() }, 'websocket closed')
      })
    }
  )

  function onPublisher (socket: WebSocket, ticket: Extract<Ticket, { role: 'publisher' }>, log: Logger): () => void {
    const detach = hub.attachPublisher(ticket.sessionId, ticket.epoch, socket)
    let paused = false
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      hub.publish(ticket.sessionId, data, isBinary)
      // A burst faster than Redis takes it: stop reading the publisher (TCP
      // backpressure) rather than drop frames for the other relays.
      if (!paused && !hub.writable) {
        paused = true
        socket.pause()
        void hub.whenWritable().then(() => { paused = false; socket.resume() })
      }
    })
    return () => {
      detach()
      admission.publisherLeft(ticket).catch((err: unknown) => log.warn({ err }, 'could not mark the session waiting'))
    }
  }

  function operatorSink (socket: WebSocket, ticket: Extract<Ticket, { role: 'operator' }>, log: Logger): OperatorSink {
    // Operators' own messages are not relayed: nothing listens to them.
    return new OperatorSink(socket, {
      userId: ticket.userId,
      maxBufferedBytes: limits.operatorMaxBuffer,
      maxLagMs: limits.operatorMaxLagMs,
      onDrop: (reason) => dropped[reason].inc(),
      onSent: (bytes) => { traffic.messagesOut++; traffic.bytesOut += bytes },
      onTooSlow: () => log.warn({ userId: ticket.userId }, `operator too slow: closing with ${CloseCode.tooSlow}`),
    })
  }
}
