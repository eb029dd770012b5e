export { consolePlugin, type ConsolePluginOptions } from './plugin.js'
