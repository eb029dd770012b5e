import createError from '@fastify/error'
import { CloseCode } from '@streaming-service/protocol'

/**
 * The error registry of the service. Every error has a stable `SS_<AREA>_<WHAT>`
 * code, an HTTP status and, where a WebSocket can be refused with it, a close
 * code (SPEC §5). Clients see `apiCode`: the code without `SS_`, lower-cased.
 * Tests assert codes, never messages.
 */
export interface ServiceError extends Error {
  code: string
  statusCode: number
  closeCode?: number
  cause?: unknown
}

function defineError (code: `SS_${string}`, message: string, statusCode: number, closeCode?: number) {
  const ErrorClass = createError(code, message, statusCode)
  if (closeCode !== undefined) {
    Object.defineProperty(ErrorClass.prototype, 'closeCode', { value: closeCode, enumerable: false })
  }
  return ErrorClass
}

/** `SS_SESSION_NOT_FOUND` → `session_not_found`; Fastify's own codes map by status. */
export function apiCode (err: { code?: string }): string {
  return err.code?.startsWith('SS_') === true ? err.code.slice(3).toLowerCase() : 'internal_error'
}

export function isServiceError (err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === 'string' && (err as ServiceError).code.startsWith('SS_')
}

// Configuration
export const ConfigInvalidError = class ConfigInvalidError extends Error {
  readonly code = 'SS_CONFIG_INVALID'
  readonly problems: readonly string[]
  constructor (problems: string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigInvalidError'
    this.problems = problems
  }
}

// Requests
export const BadRequestError = defineError('SS_BAD_REQUEST', 'bad request: %s', 400)
export const InvalidBodyError = defineError('SS_INVALID_BODY', 'invalid request body: %s', 400)
export const InvalidJsonError = defineError('SS_INVALID_JSON', 'request body is not valid JSON: %s', 400)
export const InvalidIdError = defineError('SS_INVALID_ID', '%s is not a valid UUID', 400, CloseCode.badRequest)
export const InvalidUserIdError = defineError('SS_INVALID_USER_ID', 'user id must be 1-128 characters of A-Z a-z 0-9 . _ : -', 400, CloseCode.badRequest)
export const RouteNotFoundError = defineError('SS_ROUTE_NOT_FOUND', 'no route %s %s', 404)
export const PayloadTooLargeError = defineError('SS_PAYLOAD_TOO_LARGE', 'request body is larger than %s bytes', 413)
export const UnsupportedMediaTypeError = defineError('SS_UNSUPPORTED_MEDIA_TYPE', 'content type %s is not supported; send application/json', 415)
export const UpgradeRequiredError = defineError('SS_UPGRADE_REQUIRED', 'this endpoint takes WebSocket connections only', 426)
export const MethodNotAllowedError = defineError('SS_METHOD_NOT_ALLOWED', '%s', 405)
export const MethodNotImplementedError = defineError('SS_METHOD_NOT_IMPLEMENTED', 'the request method is not one this server implements', 501)
export const UrlMalformedError = defineError('SS_URL_MALFORMED', 'the URL path is not valid percent-encoded UTF-8', 400)
export const ParamTooLongError = defineError('SS_PARAM_TOO_LONG', 'a path segment is longer than %s characters', 414)
export const HeadersTooLargeError = defineError('SS_HEADERS_TOO_LARGE', 'the request line and headers are larger than the server accepts', 431)
export const RequestTimeoutError = defineError('SS_REQUEST_TIMEOUT', 'the request did not arrive in time', 408)
export const RequestMalformedError = defineError('SS_REQUEST_MALFORMED', 'the request is not valid HTTP/1.1', 400)

// Sessions
export const InvalidCursorError = defineError('SS_INVALID_CURSOR', 'cursor is not one this API returned', 400)
export const InvalidWebhookUrlError = defineError('SS_INVALID_WEBHOOK_URL', 'webhook_url: %s', 400)
export const SessionNotFoundError = defineError('SS_SESSION_NOT_FOUND', 'session %s does not exist', 404, CloseCode.notFound)
export const SessionFinishedError = defineError('SS_SESSION_FINISHED', 'session %s is finished', 409, CloseCode.finished)
export const StreamKeyInvalidError = defineError('SS_STREAM_KEY_INVALID', 'missing or wrong stream key', 401, CloseCode.unauthorized)
export const TooManyOperatorsError = defineError('SS_TOO_MANY_OPERATORS', 'session %s already has %s operators', 409, CloseCode.conflict)

// Access control (SPEC §9)
export const UnauthorizedError = defineError('SS_UNAUTHORIZED', 'missing or wrong API key: send Authorization: Bearer <API key>', 401)
export const TokenInvalidError = defineError('SS_TOKEN_INVALID', 'operator token missing, malformed, badly signed or expired: %s', 401, CloseCode.unauthorized)
export const TokenForbiddenError = defineError('SS_TOKEN_FORBIDDEN', 'the token does not grant this: %s', 403, CloseCode.forbidden)
export const OperatorRevokedError = defineError('SS_OPERATOR_REVOKED', 'operator %s was revoked from session %s', 403, CloseCode.forbidden)
export const TokensNotConfiguredError = defineError('SS_TOKENS_NOT_CONFIGURED', 'operator tokens cannot be minted here: %s', 501)

// Infrastructure
export const DatabaseUnavailableError = defineError('SS_DB_UNAVAILABLE', 'database unavailable: %s', 503, CloseCode.tryAgainLater)
export const DatabaseQueryError = defineError('SS_DB_QUERY_FAILED', 'database query failed: %s', 500, CloseCode.internalError)
export const DataDirLockedError = defineError('SS_DB_DATA_DIR_LOCKED', 'data directory %s is in use by process %s', 500)
export const MigrationFailedError = defineError('SS_MIGRATION_FAILED', 'migration %s failed: %s', 500)
export const MigrationsPendingError = defineError('SS_MIGRATIONS_PENDING', 'migrations are pending: %s', 503)
export const SeedFailedError = defineError('SS_SEED_FAILED', 'seed %s failed: %s', 500)
export const SeedInProductionError = defineError('SS_SEED_IN_PRODUCTION', 'seed refuses to run with APP_ENV=production: seeds are development data (fixed ids and keys)', 400)
export const NotReadyError = defineError('SS_NOT_READY', 'not ready: %s', 503)
export const ShuttingDownError = defineError('SS_SHUTTING_DOWN', 'this node is shutting down; retry on another', 503, CloseCode.goingAway)
export const InternalError = defineError('SS_INTERNAL', 'internal error', 500, CloseCode.internalError)

// Backplane (relay cluster fan-out)
export const BackplaneUnavailableError = defineError('SS_BACKPLANE_UNAVAILABLE', 'backplane unavailable: %s', 503, CloseCode.tryAgainLater)
export const BackplanePublishFailedError = defineError('SS_BACKPLANE_PUBLISH_FAILED', 'backplane publish to %s failed: %s', 503)
