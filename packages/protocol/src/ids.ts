/** A session or client id: a UUID, any version, either case. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** An operator's user id: 1–128 characters of `A-Za-z0-9._:-` (SPEC §5). */
export const USER_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/
