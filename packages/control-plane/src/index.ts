export { controlPlanePlugin, type ControlPlanePluginOptions, type RelaySignals } from './plugin.js'
export { wsBaseUrl } from './ws-url.js'
