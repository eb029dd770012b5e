import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { ConfigInvalidError, redactCredentialsIn } from '@streaming-service/core'
import { migrateCreateCommand, migrateDownCommand, migrateStatusCommand, migrateUpCommand } from './commands/migrate.js'
import { seedCommand } from './commands/seed.js'
import { serve, type ServerRole } from './commands/serve.js'
import { readEnv } from './env.js'

/** Exit codes: 0 done, 1 failed, 2 bad usage or configuration. */
async function run (action: () => Promise<unknown>): Promise<void> {
  try {
    await action()
  } catch (err) {
    if (err instanceof ConfigInvalidError) {
      process.stderr.write(`streaming-service: ${redactCredentialsIn(err.message)}\n`)
      process.exit(2)
    }
    const { code, message } = err as { code?: string, message?: string }
    process.stderr.write(`streaming-service: ${redactCredentialsIn(message ?? String(err))}${code === undefined ? '' : ` [${code}]`}\n`)
    process.exit(1)
  }
}

async function serveUntilSignalled (role: ServerRole): Promise<void> {
  const server = await serve(role, readEnv())
  let signalled = false
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`streaming-service: ${signal} again, exiting now\n`)
      process.exit(1)
    }
    signalled = true
    server.shutdown().then(() => process.exit(process.exitCode ?? 0), (err: unknown) => {
      process.stderr.write(`streaming-service: shutdown failed: ${redactCredentialsIn((err as Error).message)}\n`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

await yargs(hideBin(process.argv))
  .scriptName('streaming-service')
  .usage('$0 [command]\n\nPSDS live-video session service. Configuration comes from the environment and ./.env.')
  .command(['api', '$0'], 'migrations, then the whole service in one process (default)', {},
    async () => await run(async () => await serveUntilSignalled('api')))
  .command('control-plane', 'migrations, then the REST control plane only (needs PostgreSQL and REDIS_URL or REDIS_CLUSTER_NODES)', {},
    async () => await run(async () => await serveUntilSignalled('control-plane')))
  .command('relay', 'WebSocket relay only; never migrates (needs PostgreSQL and REDIS_URL or REDIS_CLUSTER_NODES)', {},
    async () => await run(async () => await serveUntilSignalled('relay')))
  .command('migrate <action> [name]', 'database migrations', (y) => y
    .positional('action', { choices: ['up', 'down', 'status', 'create'] as const, describe: 'up: apply pending; down: revert one; status; create <name>' })
    .positional('name', { type: 'string', describe: 'name of the new migration (create)' })
    .check((argv) => argv.action !== 'create' || (typeof argv.name === 'string' && argv.name !== '') || 'migrate create needs a <name>'),
  async (argv) => await run(async () => {
    const env = readEnv()
    switch (argv.action) {
      case 'up': return await migrateUpCommand(env)
      case 'down': return await migrateDownCommand(env)
      case 'status': return await migrateStatusCommand(env)
      case 'create': return await migrateCreateCommand(env, argv.name!)
      default: throw new Error(`unknown migrate action ${String(argv.action)}`)
    }
  }))
  .command('seed', 'run seeds/*.sql in name order (refuses while migrations are pending)', (y) => y
    .option('migrate', { type: 'boolean', default: false, describe: 'apply pending migrations first' }),
  async (argv) => await run(async () => await seedCommand(readEnv(), { migrate: argv.migrate })))
  .command('command', 'maintenance commands', (y) => y
    .command('migrate-create <migration>', 'new empty migration in migrations/', (c) => c
      .positional('migration', { type: 'string', demandOption: true }),
    async (argv) => await run(async () => await migrateCreateCommand(readEnv(), argv.migration)))
    .demandCommand(1, 'name a command: migrate-create <name>'),
  () => {})
  .strict()
  .demandCommand(0)
  .help()
  // Command failures are handled by run(); whatever reaches here is usage.
  .fail((message, err, y) => {
    y.showHelp()
    process.stderr.write(`\n${message ?? err?.message}\n`)
    process.exit(2)
  })
  .parseAsync()
