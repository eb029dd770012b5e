import { readFileSync } from 'node:fs'
import t from 'tap'
import { CloseCode, closeReason, isKnownCloseCode, MAX_CLOSE_REASON_BYTES, streamPath, streamUrl } from '@streaming-service/protocol'

const pythonErrors = new URL('../../../clients/python/psds_stream/errors.py', import.meta.url)

/** `class CloseCode:` of the Python client, as name → value. */
function pythonCloseCodes (): Map<string, number> {
  const source = readFileSync(pythonErrors, 'utf8')
  const body = /^class CloseCode:\n([\s\S]*?)\n(?=\S)/m.exec(source)
  if (body === null) throw new Error(`no "class CloseCode:" in ${pythonErrors.pathname}`)
  return new Map([...body[1]!.matchAll(/^ {4}([A-Z_]+) = (\d+)/gm)].map((match) => [match[1]!, Number(match[2])]))
}

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()
// Names the Python client had before the protocol package; kept for its users.
const pythonAliases: Record<string, string> = { tooLarge: 'MESSAGE_TOO_BIG' }

t.test('the Python client mirrors every close code, with the same value', async (t) => {
  const python = pythonCloseCodes()
  for (const [name, code] of Object.entries(CloseCode)) {
    const pythonName = pythonAliases[name] ?? snakeCase(name)
    t.equal(python.get(pythonName), code, `${name} = ${code} is CloseCode.${pythonName} in Python`)
  }
  t.same([...python.values()].sort(), Object.values(CloseCode).sort(), 'and has no code the protocol does not')
})

t.test('close reasons fit a close frame, cut on a character boundary', async (t) => {
  t.equal(closeReason('session finished'), 'session finished')
  const long = closeReason('é'.repeat(100))
  t.ok(Buffer.byteLength(long) <= MAX_CLOSE_REASON_BYTES, `${Buffer.byteLength(long)} bytes`)
  t.ok(long.endsWith('...'))
  t.notOk(long.includes('\uFFFD'), 'no broken character')
  const emoji = closeReason('🎥'.repeat(40))
  t.ok(Buffer.byteLength(emoji) <= MAX_CLOSE_REASON_BYTES)
  t.equal(Buffer.from(emoji).toString(), emoji, 'valid UTF-8')
})

t.test('known codes are the table, anything else is not', async (t) => {
  for (const code of Object.values(CloseCode)) t.ok(isKnownCloseCode(code), String(code))
  for (const code of [0, 1005, 3000, 4000, 4999, 65535]) t.notOk(isKnownCloseCode(code), String(code))
})

t.test('stream path and URL', async (t) => {
  const session = '1b4e28ba-2fa1-11d2-883f-0016d3cca427'
  t.equal(streamPath(session, 'op:1'), `/ws/stream/${session}/op%3A1`)
  t.equal(streamUrl({ base: 'wss://h.example/', sessionId: session, userId: 'op' }), `wss://h.example/ws/stream/${session}/op`)
  t.equal(streamUrl({ base: 'ws://h', sessionId: session, userId: 'c', streamKey: 'a/b+c' }), `ws://h/ws/stream/${session}/c?stream_key=a%2Fb%2Bc`)
  t.equal(streamUrl({ base: 'ws://h', sessionId: session, userId: 'op', token: 'x.y.z' }), `ws://h/ws/stream/${session}/op?token=x.y.z`)
})
