import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyRequest } from 'fastify'
import {
  apiCode, BadRequestError, HeadersTooLargeError, InternalError, InvalidBodyError, InvalidJsonError, isServiceError,
  MethodNotAllowedError, MethodNotImplementedError, ParamTooLongError, PayloadTooLargeError, RequestMalformedError,
  RequestTimeoutError, UnsupportedMediaTypeError, UrlMalformedError, type ServiceError,
} from '../errors.js'

/** SPEC §3: every error response is exactly this. */
export interface ErrorBody {
  error: { code: string, message: string }
}

export function errorBody (err: ServiceError): ErrorBody {
  return { error: { code: apiCode(err), message: err.message } }
}

/**
 * Fastify's own errors (routing, parsing, validation, limits) mapped into the
 * registry. `maxParamLength` is the router's limit, for the 414 message.
 */
export function toServiceError (err: FastifyError, request: FastifyRequest, maxParamLength: number): ServiceError {
  if (isServiceError(err)) return err
  if (err.validation !== undefined) return new InvalidBodyError(err.message, { cause: err })
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new UrlMalformedError({ cause: err })
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ParamTooLongError(maxParamLength, { cause: err })
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

/**
 * What Node's HTTP parser rejects before any request exists (SPEC §10:
 * refusals are clear errors in the §3 shape, also at this level). A method
 * the parser does not know is implemented for no resource: 501 (RFC 9110
 * §9.1); a known method on a path without it stays a 404 route_not_found.
 */
export function clientErrorToServiceError (err: NodeJS.ErrnoException): ServiceError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW': return new HeadersTooLargeError({ cause: err })
    case 'ERR_HTTP_REQUEST_TIMEOUT': return new RequestTimeoutError({ cause: err })
    case 'HPE_INVALID_METHOD': return new MethodNotImplementedError({ cause: err })
    default: return new RequestMalformedError({ cause: err })
  }
}

/** A complete HTTP/1.1 response for a socket no request was parsed from; the connection closes after it. */
export function rawErrorResponse (err: ServiceError, requestId: string): string {
  const body = JSON.stringify(errorBody(err))
  return [
    `HTTP/1.1 ${err.statusCode} ${STATUS_CODES[err.statusCode] ?? 'Error'}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
    'connection: close',
    '',
    body,
  ].join('\r\n')
}

/** Writes `response` unless the peer is gone, then drops the connection (as Node's default handler does). */
export function answerAndClose (socket: Socket, response: string): void {
  if (socket.writable) socket.write(response)
  socket.destroy()
}
