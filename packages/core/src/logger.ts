import { createRequire } from 'node:module'
import pino, { type Logger, type LoggerOptions } from 'pino'
import type { LogFormat } from './config/index.js'
import { serializeError } from './credentials.js'

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
    // Errors can carry a URL's password or a Redis AUTH command: never logged (credentials.ts).
    serializers: { err: serializeError },
  }
}

export function createLogger (level: string, name: string, destination?: pino.DestinationStream): Logger {
  return destination === undefined ? pino(loggerOptions(level, name)) : pino(loggerOptions(level, name), destination)
}

/**
 * JSON lines unless a person reads them: pretty when stdout is a terminal,
 * except in production, where whatever captures a TTY still gets JSON.
 * LOG_FORMAT (`configured`) decides when set.
 */
export function chooseLogFormat (configured: LogFormat | undefined, { isTTY, production }: { isTTY: boolean, production: boolean }): LogFormat {
  return configured ?? (isTTY && !production ? 'pretty' : 'json')
}

/**
 * A pino destination printing readable lines through pino-pretty: time,
 * level, message, then the other fields on the same line. Synchronous like
 * pino's default stdout, so nothing is lost at process.exit. pino-pretty is
 * loaded here and only here: JSON logging never loads it.
 */
export function prettyDestination (options: { colorize?: boolean, destination?: NodeJS.WritableStream } = {}): pino.DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')
  return pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, ...options })
}
