import fp from 'fastify-plugin'
import { OperatorTokens, type Config, type Logger } from '@streaming-service/core'
import { consolePlugin } from '@streaming-service/console'
import { Admission } from './admission.js'
import { Hub } from './hub.js'
import { CacheBudget } from './media/index.js'
import { createRelayMetrics } from './metrics.js'
import { relaySockets } from './sockets.js'
import './types.js'

export interface RelayPluginOptions {
  config: Readonly<Config>
}

/**
 * The relay role: the stream route, the web console, and `app.hub` (who
 * watches what on this node). Needs the database, backplane, presence and
 * session store plugins of core; the sockets close (going away) in the
 * WebSocket plugin's `preClose`, before any of those resources.
 */
export const relayPlugin = fp<RelayPluginOptions>(async (app, { config }) => {
  const metrics = createRelayMetrics(app.metrics.registry)
  const budget = new CacheBudget(config.relay.cacheBudget, {
    onEvict: (bytes) => { metrics.cacheEvictions.inc(); metrics.cacheEvictedBytes.inc(bytes) },
  })
  const hub = new Hub({ backplane: app.backplane, metrics, logger: (app.log as Logger).child({ component: 'hub' }), cache: { budget } })
  app.decorate('hub', hub)
  await app.register(consolePlugin)
  const { jwt, mode } = config.auth
  await app.register(relaySockets, {
    config,
    hub,
    metrics,
    admission: new Admission(app, { maxOperators: config.session.maxOperators, authMode: mode }),
    tokens: jwt.secret === undefined && jwt.publicKey === undefined ? undefined : new OperatorTokens(jwt),
  })
}, { name: 'ss-relay', fastify: '5.x', dependencies: ['ss-backplane', 'ss-presence', 'ss-sessions'] })
