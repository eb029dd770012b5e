import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify'
import { Gauge, type Registry } from 'prom-client'
import {
  apiCode, BadRequestError, InternalError, InvalidBodyError, InvalidJsonError, isServiceError, MethodNotAllowedError,
  NotReadyError, PayloadTooLargeError, RouteNotFoundError, UnsupportedMediaTypeError, type ServiceError,
} from '../errors.js'
import { redactUrl, type Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Readiness } from './readiness.js'
import '../types.js'

export interface BaseAppOptions {
  logger: Logger
  metrics: Metrics
  readiness: Readiness
  /** Largest JSON body (bytes). */
  bodyLimit?: number
}

export interface ErrorBody {
  error: { code: string, message: string }
}

/** Fastify's own errors (parsing, validation, limits) mapped into the registry. */
function toServiceError (err: FastifyError, request: FastifyRequest): ServiceError {
  if (isServiceError(err)) return err
  if (err.validation !== undefined) return new InvalidBodyError(err.message, { cause: err })
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(request.headers['content-type'] ?? 'none', { cause: err })
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(request.routeOptions.bodyLimit ?? 'the limit', { cause: err })
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidJsonError('body is empty', { cause: err })
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new InvalidJsonError(err.message, { cause: err })
  }
  if (err instanceof SyntaxError) return new InvalidJsonError(err.message, { cause: err })
  if (err.statusCode === 405) return new MethodNotAllowedError(err.message, { cause: err })
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return new BadRequestError(err.message, { cause: err })
  }
  return new InternalError({ cause: err })
}

export function errorBody (err: ServiceError): ErrorBody {
  return { error: { code: apiCode(err), message: err.message } }
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

/**
 * The HTTP shell shared by every role: request ids, one log line per request
 * (secrets redacted), the error shape of SPEC §3 for every failure including
 * Fastify's own, and `/health`, `/ready`, `/metrics`. Decorates the app with
 * `metrics` and `readiness` for the plugins that follow. Never listens.
 */
export function createBaseApp (options: BaseAppOptions): FastifyInstance {
  const { metrics, readiness } = options
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // One line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // SPEC allows 128-character user ids; the router's default cap is 100.
    routerOptions: { maxParamLength: 256 },
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    return503OnClosing: true,
    // Bodies are validated as sent: no type coercion, no silent stripping.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  })

  app.decorate('metrics', metrics)
  app.decorate('readiness', readiness)

  // Only JSON bodies are accepted: anything else is 415, not a parsed string.
  app.removeContentTypeParser('text/plain')

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  app.addHook('onResponse', async (request, reply) => {
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
  })

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const serviceError = toServiceError(err, request)
    if (serviceError.statusCode >= 500) request.log.error({ err }, serviceError.message)
    return reply.status(serviceError.statusCode).send(errorBody(serviceError))
  })

  app.setNotFoundHandler((request, reply) => {
    const err = new RouteNotFoundError(request.method, redactUrl(request.url).split('?')[0])
    return reply.status(404).send(errorBody(err))
  })

  app.get('/health', async () => ({ status: 'ok' }))

  app.get('/ready', async (_request, reply) => {
    const report = await readiness.evaluate()
    if (report.ready) return { status: 'ready', checks: report.checks }
    const failed = Object.entries(report.checks).filter(([, result]) => result !== 'ok')
    const err = new NotReadyError(failed.map(([name, result]) => `${name}: ${result}`).join('; '))
    return reply.status(503).send({ ...errorBody(err), checks: report.checks })
  })

  registerReadinessMetric(metrics.registry, readiness)
  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType)
    return await metrics.registry.metrics()
  })

  return app
}
