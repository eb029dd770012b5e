import type { TrustProxy } from '../http/trust-proxy.js'
import type { AuthConfig } from './auth.js'
import type { WebhookConfig } from './webhooks.js'

export type AppEnv = 'development' | 'production' | 'test'
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-full'
/** JSON lines for collectors and tools; pretty (pino-pretty) for a person at a terminal. */
export type LogFormat = 'json' | 'pretty'

export interface DatabaseConfig {
  /** No DB_HOST and no DATABASE_URL: PGlite in `dataDir`, served over a loopback socket. */
  embedded: boolean
  url?: string
  host?: string
  port: number
  user: string
  password?: string
  database: string
  sslmode: SslMode
  poolMax: number
  connectTimeoutMs: number
  dataDir: string
}

export interface Config {
  appEnv: AppEnv
  http: { host: string; port: number }
  /** Peers whose X-Forwarded-For/-Proto/-Host are believed (ws_url, logged client address). */
  trustProxy: TrustProxy
  auth: AuthConfig
  db: DatabaseConfig
  /** `clusterNodes` (REDIS_CLUSTER_NODES) selects Redis Cluster and wins over `url`. */
  redis: { url?: string; clusterNodes?: ReadonlyArray<{ host: string; port: number }>; keyPrefix: string }
  ws: {
    baseUrl?: string
    maxMessageSize: number
    pingIntervalMs: number
    operatorMaxBuffer: number
    operatorMaxLagMs: number
    operatorMaxMessage: number
    maxConnections: number
  }
  session: {
    maxOperators: number
    presenceTtlMs: number
    /** 0: never */
    idleTtlMs: number
    /** 0: kept forever */
    retentionMs: number
    sweepIntervalMs: number
  }
  relay: {
    /** RELAY_CACHE_BUDGET: bytes all late-join caches of one relay may hold together. */
    cacheBudget: number
  }
  /** SPEC §12 */
  webhooks: WebhookConfig
  shutdownDrainMs: number
  logLevel: string
  /** LOG_FORMAT; unset: pretty when stdout is a terminal outside production, else JSON (see chooseLogFormat). */
  logFormat?: LogFormat
  /** Override of the directories found next to the installed package. */
  migrationsDir?: string
  seedsDir?: string
}
