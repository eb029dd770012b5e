import t from 'tap'
import { closeAction, CloseCode } from '../src/close-codes.js'

t.test('codes that cannot succeed on retry stop the client', async (t) => {
  for (const code of [4400, 4401, 4404, 4409, 4410]) t.equal(closeAction(code), 'stop', String(code))
})

t.test('a restarted stream reconnects at once', async (t) => {
  t.equal(CloseCode.streamRestarted, 4205)
  t.equal(closeAction(4205), 'reconnect-now')
})

t.test('draining, network errors, server errors, try-later and too-slow back off', async (t) => {
  for (const code of [1000, 1001, 1005, 1006, 1009, 1011, 1013, 4429]) t.equal(closeAction(code), 'backoff', String(code))
})

t.test('a credential that does not grant the connection (forbidden, e.g. a revoked operator) stops the client', async (t) => {
  t.equal(closeAction(CloseCode.forbidden), 'stop')
  t.equal(closeAction(CloseCode.unauthorized), 'stop')
})
