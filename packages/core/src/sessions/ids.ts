import { USER_ID_PATTERN, UUID_PATTERN } from '@streaming-service/protocol'
import { InvalidIdError, InvalidUserIdError } from '../errors.js'

/** A session or client id, lower-cased; throws SS_INVALID_ID (400 / close badRequest). */
export function parseUuid (value: string, what: string): string {
  if (!UUID_PATTERN.test(value)) throw new InvalidIdError(what)
  return value.toLowerCase()
}

/** An operator's user id (1–128 chars of A-Za-z0-9._:-); throws SS_INVALID_USER_ID. */
export function parseUserId (value: string): string {
  if (!USER_ID_PATTERN.test(value)) throw new InvalidUserIdError()
  return value
}
