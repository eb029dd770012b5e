import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import Fastify, {
  LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest,
} from 'fastify'
import { Gauge, type Registry } from 'prom-client'
import { MethodNotImplementedError, NotReadyError, RouteNotFoundError, ShuttingDownError } from '../errors.js'
import { redactUrl, type Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { answerAndClose, clientErrorToServiceError, errorBody, rawErrorResponse, toServiceError } from './errors.js'
import { openApiPlugin } from './openapi.js'
import type { Readiness } from './readiness.js'
import type { TrustProxy } from './trust-proxy.js'
import '../types.js'

export interface BaseAppOptions {
  logger: Logger
  metrics: Metrics
  readiness: Readiness
  /** Largest JSON body (bytes). */
  bodyLimit?: number
  /** TRUST_PROXY: who may set X-Forwarded-*; request.ip/protocol/host follow it. Nobody by default. */
  trustProxy?: TrustProxy
}

/**
 * `readiness_check{check}`: what `/ready` would answer, per check, evaluated
 * at scrape time. Prometheus cannot probe `/ready` itself; the alerts on a
 * dependency down (check="backplane") and on readiness flapping need it.
 */
function registerReadinessMetric (registry: Registry, readiness: Readiness): void {
  if (registry.getSingleMetric('readiness_check') !== undefined) return
  new Gauge({ // eslint-disable-line no-new
    name: 'readiness_check',
    help: '1 when the /ready check passes, 0 when it fails (evaluated at scrape time); draining is 0 while the node shuts down',
    labelNames: ['check'] as const,
    registers: [registry],
    async collect () {
      const report = await readiness.evaluate()
      for (const [check, result] of Object.entries(report.checks)) this.set({ check }, result === 'ok' ? 1 : 0)
    },
  })
}

/** SPEC §10: a client's X-Request-Id is echoed and logged only when short and plain; otherwise a fresh id. */
const PLAIN_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/

function acceptRequestId (header: string | string[] | undefined): string {
  return typeof header === 'string' && PLAIN_REQUEST_ID.test(header) ? header : randomUUID()
}

/** A hop count as the function Fastify builds for one (its types take no number). */
function fastifyTrustProxy (trust: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  return trust === false ? false : [...trust]
}

/**
 * An upgrade request answered over HTTP (refused before any WebSocket exists)
 * has a socket that left Node's HTTP parser: nothing would ever close it, and
 * a client could hold it open. The answer says `connection: close` and the
 * socket ends once it is written. An accepted upgrade never writes this reply.
 */
function endRefusedUpgrade (request: FastifyRequest, reply: FastifyReply): void {
  if (request.headers.upgrade === undefined) return
  reply.header('connection', 'close')
  reply.raw.once('finish', () => { request.raw.socket.end() })
}

/** The router's cap on one path segment; SPEC allows 128-character user ids, the default is 100. */
const MAX_PARAM_LENGTH = 256

/**
 * The HTTP shell shared by every role: request ids, one log line per request
 * (secrets redacted), the error shape of SPEC §3 for every failure including
 * Fastify's own and the HTTP parser's, and `/health`, `/ready`, `/metrics`.
 * Decorates the app with `metrics` and `readiness` for the plugins that
 * follow. Never listens.
 */
export function createBaseApp (options: BaseAppOptions): FastifyInstance {
  const { metrics, readiness } = options
  const trustProxy = fastifyTrustProxy(options.trustProxy ?? false)

  const completed = (request: FastifyRequest, reply: FastifyReply): void => {
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.httpRequestDuration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000
    )
    const line = {
      method: request.method,
      url: redactUrl(request.url),
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 100) / 100,
      remoteAddress: request.ip,
    }
    if (reply.statusCode >= 500) request.log.warn(line, 'request failed')
    else request.log.info(line, 'request completed')
  }

  const sendError = (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const serviceError = toServiceError(err, request, MAX_PARAM_LENGTH)
    if (serviceError.statusCode >= 500) request.log.error({ err }, serviceError.message)
    return reply.status(serviceError.statusCode).send(errorBody(serviceError))
  }

  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // One line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy,
    requestIdHeader: false,
    genReqId: (req) => acceptRequestId(req.headers['x-request-id']),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // Requests that still arrive while the app closes get the 503 below, in
    // the error shape, rather than Fastify's own body.
    return503OnClosing: false,
    // Bodies are validated as sent: no type coercion, no silent stripping.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Bad percent-encoding and over-long segments: answered before routing,
    // so without hooks; the header and the log line are added here.
    frameworkErrors: (err, request, reply) => {
      reply.header('x-request-id', request.id)
      endRefusedUpgrade(request, reply)
      reply.raw.once('finish', () => completed(request, reply))
      return sendError(err, request, reply)
    },
    clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      const serviceError = clientErrorToServiceError(err)
      const id = randomUUID()
      options.logger.info({ reqId: id, code: err.code, statusCode: serviceError.statusCode, remoteAddress: socket.remoteAddress },
        'request refused by the HTTP parser')
      answerAndClose(socket, rawErrorResponse(serviceError, id))
    },
  })

  // CONNECT never reaches the router: Node hands it to 'connect' listeners and, with none, drops the socket.
  app.server.on('connect', (request: { method?: string }, socket: Socket) => {
    const id = randomUUID()
    options.logger.info({ reqId: id, method: request.method, remoteAddress: socket.remoteAddress }, 'request refused: CONNECT')
    answerAndClose(socket, rawErrorResponse(new MethodNotImplementedError(), id))
  })

  app.decorate('metrics', metrics)
  app.decorate('readiness', readiness)

  // Only JSON bodies are accepted: anything else is 415, not a parsed string.
  app.removeContentTypeParser('text/plain')

  let closing = false
  app.addHook('preClose', async () => { closing = true })

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    endRefusedUpgrade(request, reply)
    if (closing) return await reply.header('connection', 'close').status(503).send(errorBody(new ShuttingDownError()))
  })

  app.addHook('onResponse', async (request, reply) => { completed(request, reply) })

  app.setErrorHandler(sendError)

  app.setNotFoundHandler((request, reply) => {
    const err = new RouteNotFoundError(request.method, redactUrl(request.url).split('?')[0])
    return reply.status(404).send(errorBody(err))
  })

  // The probes load after the OpenAPI plugin, so the document lists them too.
  void app.register(openApiPlugin)
  void app.register(async (probes) => {
    probes.get('/health', { schema: { summary: 'Alive (no dependency checked)', tags: ['operations'], security: [] } }, async () => ({ status: 'ok' }))

    probes.get('/ready', {
      schema: { summary: 'Ready: database, migrations and backplane answer, not draining (503 says which check failed)', tags: ['operations'], security: [] },
    }, async (_request, reply) => {
      const report = await readiness.evaluate()
      if (report.ready) return { status: 'ready', checks: report.checks }
      const failed = Object.entries(report.checks).filter(([, result]) => result !== 'ok')
      const err = new NotReadyError(failed.map(([name, result]) => `${name}: ${result}`).join('; '))
      return await reply.status(503).send({ ...errorBody(err), checks: report.checks })
    })

    registerReadinessMetric(metrics.registry, readiness)
    probes.get('/metrics', { schema: { summary: 'Prometheus text format', tags: ['operations'], security: [] } }, async (_request, reply) => {
      reply.type(metrics.registry.contentType)
      return await metrics.registry.metrics()
    })
  })

  return app
}
