// The route schema's OpenAPI fields (summary, tags, hide…) for every package that registers routes.
/// <reference types="@fastify/swagger" preserve="true" />
import type { Backplane } from './backplane/index.js'
import type { Database } from './database/connection.js'
import type { Readiness } from './http/readiness.js'
import type { Metrics } from './metrics.js'
import type { Presence } from './presence/index.js'
import type { SessionEventLog } from './sessions/events.js'
import type { OperatorStore } from './sessions/operator-store.js'
import type { SessionStore } from './sessions/store.js'

// What the base app and core's plugins decorate the Fastify instance with.
declare module 'fastify' {
  interface FastifyInstance {
    /** The process's metrics registry (createBaseApp). */
    metrics: Metrics
    /** What `/ready` checks (createBaseApp); plugins add their resource's check. */
    readiness: Readiness
    /** databasePlugin */
    db: Database
    /** backplanePlugin */
    backplane: Backplane
    /** presencePlugin */
    presence: Presence
    /** sessionStorePlugin */
    sessions: SessionStore
    /** sessionStorePlugin */
    operators: OperatorStore
    /** sessionStorePlugin: the session event log (SPEC §12) */
    events: SessionEventLog
  }
}
