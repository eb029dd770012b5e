export { serve, type RunningServer, type ServerRole } from './commands/serve.js'
export { migrateCreateCommand, migrateDownCommand, migrateStatusCommand, migrateUpCommand } from './commands/migrate.js'
export { seedCommand } from './commands/seed.js'
export { readEnv, type Env } from './env.js'
