import type { Hub } from './hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** relayPlugin */
    hub: Hub
  }
}
