import { generateKeyPairSync, randomUUID } from 'node:crypto'
import t from 'tap'
import { SignJWT, UnsecuredJWT } from 'jose'
import { ApiKeys, bearerCredential, OperatorTokens } from '@streaming-service/core'

// SPEC §9 operator tokens, verified locally: every refusal is SS_TOKEN_INVALID
// (4401); the claims are what a backend minting its own tokens must send.

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!'
const session = randomUUID()
const now = () => Math.floor(Date.now() / 1000)

async function hs256 (claims: Record<string, unknown>, secret = SECRET, header: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...header }).sign(new TextEncoder().encode(secret))
}

const valid = () => ({ sid: session, sub: 'op-1', role: 'operator', iat: now(), exp: now() + 600 })

t.test('HS256: a minted token verifies with its claims; a backend-made one too', async (t) => {
  const tokens = new OperatorTokens({ secret: SECRET })
  t.ok(tokens.canMint)
  const { token, expiresAt } = await tokens.mint(session, 'op-1', 600_000)
  t.match(await tokens.verify(token), { sid: session, sub: 'op-1', role: 'operator' })
  t.ok(Math.abs(expiresAt.getTime() - Date.now() - 600_000) < 2000, 'expires in the ttl')
  t.match(await tokens.verify(await hs256({ ...valid(), jti: 'abc' })), { sub: 'op-1', jti: 'abc' })
})

t.test('ES256 and RS256: verified with AUTH_JWT_PUBLIC_KEY; minting needs the private key', async (t) => {
  for (const [alg, pair] of [
    ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ] as const) {
    const publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const verifier = new OperatorTokens({ publicKey })
    t.equal(verifier.algorithm, alg)
    t.notOk(verifier.canMint, `${alg}: no private key, no minting`)
    await t.rejects(verifier.mint(session, 'op', 1000), { code: 'SS_TOKENS_NOT_CONFIGURED' })
    const signed = await new SignJWT(valid()).setProtectedHeader({ alg }).sign(pair.privateKey)
    t.match(await verifier.verify(signed), { sub: 'op-1' }, `${alg}: a backend's token verifies`)
    const minter = new OperatorTokens({ publicKey, privateKey })
    t.match(await verifier.verify((await minter.mint(session, 'op-2', 1000)).token), { sub: 'op-2' }, `${alg}: minted with the private key`)
    // Algorithm confusion: HS256 signed with the public key's text as the secret.
    await t.rejects(verifier.verify(await hs256(valid(), publicKey)), { code: 'SS_TOKEN_INVALID' }, `${alg}: an HS256 token made with the public key is refused`)
  }
})

t.test('every malformed, forged or expired token is SS_TOKEN_INVALID with close code 4401', async (t) => {
  const tokens = new OperatorTokens({ secret: SECRET })
  const { exp: _exp, ...noExp } = valid()
  const { iat: _iat, ...noIat } = valid()
  const { sid: _sid, ...noSid } = valid()
  const cases: Array<[string, string | Promise<string>]> = [
    ['empty', ''],
    ['garbage', 'not-a-token'],
    ['three dots of garbage', 'a.b.c'],
    ['wrong secret', hs256(valid(), 'another-secret-of-at-least-32-bytes!!')],
    ['expired', hs256({ ...valid(), iat: now() - 7200, exp: now() - 3600 })],
    ['alg none', new UnsecuredJWT(valid()).encode()],
    ['no exp', hs256(noExp)],
    ['no iat', hs256(noIat)],
    ['no sid', hs256(noSid)],
    ['exp more than 24 h ahead', hs256({ ...valid(), exp: now() + 25 * 3600 })],
    ['sid not a uuid', hs256({ ...valid(), sid: 'session-1' })],
    ['sub not a user id', hs256({ ...valid(), sub: 'has spaces' })],
    ['HS512 instead of HS256', new SignJWT(valid()).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(SECRET))],
  ]
  for (const [what, token] of cases) {
    await t.rejects(tokens.verify(await token), { code: 'SS_TOKEN_INVALID', statusCode: 401, closeCode: 4401 }, what)
  }
})

t.test('API keys: any configured key matches, in constant time; nothing else does', async (t) => {
  const keys = new ApiKeys(['k'.repeat(32), 'second-key-'.padEnd(40, 'x')])
  t.ok(keys.matches('k'.repeat(32)))
  t.ok(keys.matches('second-key-'.padEnd(40, 'x')), 'a second key works (rotation)')
  for (const wrong of [undefined, '', 'k'.repeat(31), 'k'.repeat(33), 'K'.repeat(32)]) t.notOk(keys.matches(wrong), String(wrong))
  t.equal(bearerCredential('Bearer abc.def'), 'abc.def')
  t.equal(bearerCredential('bearer  xyz '), 'xyz')
  t.equal(bearerCredential('Basic abc'), undefined)
  t.equal(bearerCredential(undefined), undefined)
})
