import { InvalidIdError, InvalidUserIdError } from '../errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const USER_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function isUuid (value: string): boolean {
  return UUID.test(value)
}

/** A session or client id, lower-cased; throws SS_INVALID_ID (400 / close 4400). */
export function parseUuid (value: string, what: string): string {
  if (!UUID.test(value)) throw new InvalidIdError(what)
  return value.toLowerCase()
}

/** An operator's user id (1–128 chars of A-Za-z0-9._:-); throws SS_INVALID_USER_ID. */
export function parseUserId (value: string): string {
  if (!USER_ID.test(value)) throw new InvalidUserIdError()
  return value
}
