export { controlPlanePlugin, type ControlPlanePluginOptions, type RelaySignals } from './plugin.js'
