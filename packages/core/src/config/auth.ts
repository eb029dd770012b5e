import { createPrivateKey, createPublicKey } from 'node:crypto'
import type { AppEnv } from './types.js'

export type AuthMode = 'open' | 'token'

export interface AuthConfig {
  /** `open`: anyone may call REST and watch (the stream key still guards publishing); `token`: SPEC §9. */
  mode: AuthMode
  /** API_KEYS: the REST API's bearer keys (several, for rotation). */
  apiKeys: readonly string[]
  /** Operator tokens: AUTH_JWT_SECRET (HS256), or AUTH_JWT_PUBLIC_KEY (+ AUTH_JWT_PRIVATE_KEY to mint). */
  jwt: { secret?: string, publicKey?: string, privateKey?: string }
  /** CORS_ORIGINS: origins allowed to call the REST API from a browser; `*` any. */
  corsOrigins: readonly string[] | '*'
}

/** The raw variables, as strings (they are secrets: problems name them, never quote them). */
export interface AuthEnv {
  AUTH_MODE?: string
  API_KEYS?: string
  AUTH_JWT_SECRET?: string
  AUTH_JWT_PUBLIC_KEY?: string
  AUTH_JWT_PRIVATE_KEY?: string
  CORS_ORIGINS?: string
}

/** Longest-lived secrets are at least this long (API keys in characters, the JWT secret in bytes). */
export const MIN_SECRET_LENGTH = 32

const list = (value: string | undefined): string[] => (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')
/** PEM in an environment variable often arrives with its line breaks as `\n`. */
const pem = (value: string | undefined): string | undefined => value?.replaceAll('\\n', '\n')

/**
 * SPEC §9's configuration: `token` is required in production; in `token`
 * mode API keys and an operator-token key are required. Every problem is
 * pushed to `problems` by variable name.
 */
export function loadAuthConfig (env: AuthEnv, appEnv: AppEnv, problems: string[]): AuthConfig {
  const mode = (env.AUTH_MODE ?? (appEnv === 'production' ? undefined : 'open')) as AuthMode | undefined
  if (appEnv === 'production' && mode !== 'token') {
    problems.push(`AUTH_MODE: must be "token" in production (is ${mode === undefined ? 'unset' : `"${mode}"`}): API keys for REST, signed tokens for operators`)
  }
  const apiKeys = list(env.API_KEYS)
  apiKeys.forEach((key, i) => {
    if (key.length < MIN_SECRET_LENGTH) problems.push(`API_KEYS: key ${i + 1} has ${key.length} characters; each needs at least ${MIN_SECRET_LENGTH}`)
  })
  const jwt = { secret: env.AUTH_JWT_SECRET, publicKey: pem(env.AUTH_JWT_PUBLIC_KEY), privateKey: pem(env.AUTH_JWT_PRIVATE_KEY) }
  checkTokenKeys(jwt, problems)
  if (mode === 'token') {
    if (apiKeys.length === 0) problems.push(`API_KEYS: required with AUTH_MODE=token (comma-separated, each at least ${MIN_SECRET_LENGTH} characters)`)
    if (jwt.secret === undefined && jwt.publicKey === undefined) {
      problems.push('AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY: required with AUTH_MODE=token (operators present tokens signed with it)')
    }
  }
  return {
    mode: mode ?? 'token',
    apiKeys,
    jwt: Object.fromEntries(Object.entries(jwt).filter(([, value]) => value !== undefined)),
    corsOrigins: corsOrigins(env.CORS_ORIGINS, appEnv, problems),
  }
}

function checkTokenKeys (jwt: AuthConfig['jwt'], problems: string[]): void {
  if (jwt.secret !== undefined && jwt.publicKey !== undefined) problems.push('AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY: set one, not both')
  if (jwt.secret !== undefined && Buffer.byteLength(jwt.secret) < MIN_SECRET_LENGTH) {
    problems.push(`AUTH_JWT_SECRET: has ${Buffer.byteLength(jwt.secret)} bytes; needs at least ${MIN_SECRET_LENGTH}`)
  }
  if (jwt.publicKey !== undefined) {
    try {
      const key = createPublicKey(jwt.publicKey)
      const p256 = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      if (key.asymmetricKeyType !== 'rsa' && !p256) problems.push('AUTH_JWT_PUBLIC_KEY: must be an RSA (RS256) or EC P-256 (ES256) key')
    } catch {
      problems.push('AUTH_JWT_PUBLIC_KEY: not a PEM public key')
    }
  }
  if (jwt.privateKey !== undefined) {
    if (jwt.publicKey === undefined) problems.push('AUTH_JWT_PRIVATE_KEY: only used with AUTH_JWT_PUBLIC_KEY (to mint tokens)')
    try {
      createPrivateKey(jwt.privateKey)
    } catch {
      problems.push('AUTH_JWT_PRIVATE_KEY: not a PEM private key')
    }
  }
}

/** Unset: any origin in development, none in production. */
function corsOrigins (value: string | undefined, appEnv: AppEnv, problems: string[]): readonly string[] | '*' {
  if (value === undefined) return appEnv === 'production' ? [] : '*'
  if (value.trim() === '*') return '*'
  const origins = list(value)
  for (const origin of origins) {
    let parsed: URL | undefined
    try { parsed = new URL(origin) } catch {}
    if (parsed?.origin !== origin) problems.push(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path)`)
  }
  return origins
}
