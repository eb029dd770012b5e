export { relayPlugin, type RelayPluginOptions } from './plugin.js'
export { Hub, type HubOptions } from './hub.js'
export { announceFinished, announceRevoked } from './wire.js'
