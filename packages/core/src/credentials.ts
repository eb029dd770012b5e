import pino from 'pino'

/**
 * Credentials inside connection URLs (DATABASE_URL, REDIS_URL) never reach a
 * log line or an error message (SPEC §9). What stays is what helps debugging:
 * scheme, user, host, port, path.
 */

export const REDACTED = '[Redacted]'

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i
/** Query parameters that carry a password (libpq and ioredis both read them from the URL). */
const SECRET_PARAM = /([?&](?:password|pass|sslpassword)=)[^&#]*/gi
/** Where URLs start in free text; each runs to the next white space or quote. */
const URL_IN_TEXT = /[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi

function redactParams (url: string): string {
  return url.replace(SECRET_PARAM, `$1${REDACTED}`)
}

/**
 * `postgres://app:hunter2@db:5432/x` → `postgres://app:[Redacted]@db:5432/x`:
 * everything between the first `:` after the scheme and the last `@` is
 * hidden. No URL parser decides where the password ends: one with an
 * unencoded `/`, `?`, `#` or `@` in it parses as a host, path or query and
 * would leak, so an `@` further on (rare in paths and queries) costs the host
 * rather than the password.
 */
export function redactUrlCredentials (url: string): string {
  const scheme = SCHEME.exec(url)?.[0]
  if (scheme === undefined) return redactParams(url)
  const rest = url.slice(scheme.length)
  const at = rest.lastIndexOf('@')
  const colon = rest.indexOf(':')
  if (at === -1 || colon === -1 || colon > at) return redactParams(url)
  return redactParams(`${scheme}${rest.slice(0, colon)}:${REDACTED}${rest.slice(at)}`)
}

/**
 * Redacts every URL in a message. `knownUrls` (the configured values) are
 * replaced wherever they occur first, whole: a value with white space in it
 * would otherwise be cut into pieces that no longer look like a URL.
 */
export function redactCredentialsIn (text: string, knownUrls: ReadonlyArray<string | undefined> = []): string {
  let out = text
  for (const url of knownUrls) {
    if (url !== undefined && url !== '') out = out.split(url).join(redactUrlCredentials(url))
  }
  return out.replace(URL_IN_TEXT, (url) => redactUrlCredentials(url))
}

type SerializedError = Record<string, unknown> & { aggregateErrors?: SerializedError[] }

function scrubSerialized (err: SerializedError): SerializedError {
  // ioredis attaches the failed command, arguments included: AUTH and HELLO
  // carry the password, PUBLISH a whole media frame. The name is enough.
  const command = err.command as { name?: unknown } | undefined
  if (command !== null && typeof command === 'object') err.command = { name: command.name }
  if (typeof err.message === 'string') err.message = redactCredentialsIn(err.message)
  if (typeof err.stack === 'string') err.stack = redactCredentialsIn(err.stack)
  if (Array.isArray(err.aggregateErrors)) err.aggregateErrors = err.aggregateErrors.map(scrubSerialized)
  return err
}

/** pino's `err` serializer, minus credentials and driver command arguments. */
export function serializeError (err: unknown): unknown {
  const serialized = pino.stdSerializers.err(err as Error) as unknown
  return serialized !== null && typeof serialized === 'object' ? scrubSerialized(serialized as SerializedError) : serialized
}
