import pino, { type Logger, type LoggerOptions } from 'pino'

export type { Logger }

/** Secrets never reach the logs: stream keys, tokens and credentials. */
export const redactPaths = [
  'stream_key', '*.stream_key', '*.*.stream_key',
  'token', '*.token', '*.*.token',
  'password', '*.password',
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization',
]

const SECRET_PARAMS = new Set(['stream_key', 'token', 'access_token', 'api_key'])

function decodeName (name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' ')).toLowerCase()
  } catch {
    return name.toLowerCase()
  }
}

/**
 * Replaces secret query-string values in a URL (as logged per request). Names
 * are compared decoded, as the router decodes them: `stream%5Fkey` is a key.
 */
export function redactUrl (url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const hash = url.indexOf('#', start)
  const end = hash === -1 ? url.length : hash
  const query = url.slice(start + 1, end).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    return SECRET_PARAMS.has(decodeName(name)) ? `${name}=[Redacted]` : pair
  })
  return `${url.slice(0, start + 1)}${query.join('&')}${url.slice(end)}`
}

export function loggerOptions (level: string, name: string): LoggerOptions {
  return {
    name,
    level,
    redact: { paths: redactPaths, censor: '[Redacted]' },
  }
}

export function createLogger (level: string, name: string, destination?: pino.DestinationStream): Logger {
  return destination === undefined ? pino(loggerOptions(level, name)) : pino(loggerOptions(level, name), destination)
}
