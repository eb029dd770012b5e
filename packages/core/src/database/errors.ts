import { DatabaseQueryError, DatabaseUnavailableError, isServiceError, type ServiceError } from '../errors.js'

/**
 * Codes that mean "the database cannot be reached right now" rather than "this
 * query is wrong": socket errors, postgres.js connection states, and the
 * server's own shutdown / too-many-connections answers.
 */
const UNAVAILABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
  '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006',
])

export function isDatabaseUnavailable (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && UNAVAILABLE.has(code)
}

/** Wraps a driver error into the registry, keeping it as `cause`. */
export function wrapDatabaseError (err: unknown, action: string): ServiceError {
  if (isServiceError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  return isDatabaseUnavailable(err)
    ? new DatabaseUnavailableError(`${action} (${String(code)})`, { cause: err })
    : new DatabaseQueryError(action, { cause: err })
}
