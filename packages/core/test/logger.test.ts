import { Writable } from 'node:stream'
import t from 'tap'
import { chooseLogFormat, createLogger, prettyDestination } from '@streaming-service/core'

t.test('log format: pretty for a person at a terminal, JSON for everything else; LOG_FORMAT decides when set', async (t) => {
  t.equal(chooseLogFormat(undefined, { isTTY: true, production: false }), 'pretty')
  t.equal(chooseLogFormat(undefined, { isTTY: false, production: false }), 'json', 'piped or captured: JSON lines')
  t.equal(chooseLogFormat(undefined, { isTTY: true, production: true }), 'json', 'production stays JSON even on a TTY')
  t.equal(chooseLogFormat('json', { isTTY: true, production: false }), 'json')
  t.equal(chooseLogFormat('pretty', { isTTY: false, production: true }), 'pretty')
})

t.test('pretty lines are readable, one per entry, with the other fields and secrets redacted', async (t) => {
  const lines: string[] = []
  const written = new Promise<void>((resolve) => {
    const sink = new Writable({
      write (chunk: Buffer, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter((line) => line !== ''))
        if (lines.length >= 2) resolve()
        callback()
      },
    })
    const log = createLogger('info', 'test', prettyDestination({ colorize: false, destination: sink })).child({ role: 'api' })
    log.info('console: http://localhost:8090/')
    log.warn({ sessionId: 's1', stream_key: 'secret-key' }, 'publisher replaced')
  })
  await written
  t.match(lines[0], /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(test\): console: http:\/\/localhost:8090\/ \{"role":"api"\}$/)
  t.match(lines[1], /^\[[\d:.]+\] WARN \(test\): publisher replaced \{.*"sessionId":"s1".*\}$/)
  t.match(lines[1], '"stream_key":"[Redacted]"')
  t.notMatch(lines.join('\n'), 'secret-key')
})
