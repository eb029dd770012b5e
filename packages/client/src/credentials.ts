/**
 * A credential (an operator token, a stream key), or a function returning
 * one that is called before every connection attempt. Tokens expire, but
 * expiry only gates a connection (an open socket is never cut for it), so a
 * long-watching viewer that reconnects needs a fresh token then: pass a
 * function that fetches one (e.g. `SessionsApi.tokenSource`).
 */
export type CredentialSource = string | (() => string | Promise<string>)

/**
 * Where a credential travels: `query` (`?token=` / `?stream_key=`, all a
 * browser's WebSocket can do) or `header` (`Authorization: Bearer`, kept out
 * of URLs and so out of proxies' logs; needs a WebSocket class that takes
 * `{ headers }` as its second argument, such as the `ws` package's in Node).
 */
export type CredentialPlacement = 'query' | 'header'

/** What one connection attempt opens: a URL, and the upgrade request's headers when there are any. */
export type ConnectTarget = string | { url: string, headers: Record<string, string> }

/** A URL, or a function called before every attempt; it may be async (e.g. it fetches a fresh token). */
export type TargetSource = string | (() => ConnectTarget | Promise<ConnectTarget>)

export interface CredentialOptions {
  /** The query parameter that carries it: `token` or `stream_key`. */
  name: 'token' | 'stream_key'
  credential: CredentialSource | undefined
  placement?: CredentialPlacement
}

/**
 * `url` with a credential added as the options say, resolved anew for every
 * connection attempt. Without a credential, `url` as it is.
 */
export function withCredential (url: TargetSource, { name, credential, placement = 'query' }: CredentialOptions): TargetSource {
  if (credential === undefined) return url
  return async () => {
    const [target, value] = await Promise.all([typeof url === 'string' ? url : url(), typeof credential === 'string' ? credential : credential()])
    const base = typeof target === 'string' ? { url: target, headers: {} } : target
    if (placement === 'header') return { url: base.url, headers: { ...base.headers, authorization: `Bearer ${value}` } }
    const withQuery = new URL(base.url)
    withQuery.searchParams.set(name, value)
    return Object.keys(base.headers).length === 0 ? withQuery.toString() : { url: withQuery.toString(), headers: base.headers }
  }
}
