export * from './database.js'
export * from './faults.js'
export * from './process.js'
