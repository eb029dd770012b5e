import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import t from 'tap'
import { consoleUrl } from '@streaming-service/cli'
import { CLI, serviceEnv, startService, tempDir } from '@streaming-service/testing'

// What a person sees after `npm start`: where the console is, and logs they
// can read when the output is a terminal (JSON lines otherwise).

t.test('the console URL is one a browser can open: a wildcard address becomes localhost', async (t) => {
  t.equal(consoleUrl({ address: '0.0.0.0', family: 'IPv4', port: 8090 }), 'http://localhost:8090/')
  t.equal(consoleUrl({ address: '::', family: 'IPv6', port: 8090 }), 'http://localhost:8090/')
  t.equal(consoleUrl({ address: '127.0.0.1', family: 'IPv4', port: 1234 }), 'http://127.0.0.1:1234/')
  t.equal(consoleUrl({ address: '::1', family: 'IPv6', port: 1234 }), 'http://[::1]:1234/')
})

t.test('api logs one line saying where the console is, as JSON when not a terminal', async (t) => {
  const service = await startService(t, ['api'], { APP_HOST: '0.0.0.0', DATA_DIR: join(tempDir(), 'data'), SHUTDOWN_DRAIN: '0ms' })
  const line = await service.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('console: '))
  t.equal(line.msg, `console: http://localhost:${service.port}/`)
  t.equal(service.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('console: ')).length, 1, 'said once')
  const page = await fetch(`http://localhost:${service.port}/`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), 'text/html')
  t.same(await service.stop(), { code: 0, signal: null })
})

t.test('in a terminal the logs are readable lines, not JSON, and say where the console is', async (t) => {
  // util-linux's script(1) gives the process a pseudo-terminal, as a shell does.
  const script = '/usr/bin/script'
  if (!existsSync(script)) throw new Error(`${script} is missing: apt-get install bsdutils`)
  const command = `exec '${process.execPath}' '${CLI}' api`
  const child = spawn(script, ['-qec', command, '/dev/null'], {
    cwd: tempDir(),
    env: serviceEnv({ APP_ENV: 'development', HTTP_PORT: '0', DATA_DIR: join(tempDir(), 'data'), SHUTDOWN_DRAIN: '0ms', TERM: 'xterm' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  // Closing the terminal (script exits) hangs up the service.
  t.teardown(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await exited } })
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no console line within 30 s:\n${output}`)), 30_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const found = /console: (http:\/\/localhost:\d+\/)/.exec(stripVTControlCharacters(output))
      if (found !== null) { clearTimeout(timer); resolve(found[1]!) }
    })
    child.on('exit', () => reject(new Error(`exited before the console line:\n${output}`)))
  })
  const lines = stripVTControlCharacters(output).split(/\r?\n/).filter((line) => line.trim() !== '')
  t.ok(lines.length >= 3, `${lines.length} lines`)
  for (const line of lines) {
    t.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN) \(streaming-service\): \S/, `readable: ${line.slice(0, 80)}`)
  }
  t.ok(lines.some((line) => line.includes('): listening {')), 'listening, with its fields on the same line')
  t.equal((await fetch(url)).status, 200, `${url} answers`)
})
