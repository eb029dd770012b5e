// The control plane's REST API (SPEC §3), as the console uses it.
import type { CreatedSession, OperatorList, OperatorView, SessionView } from '@streaming-service/protocol'

async function request<T> (url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init)
  if (!res.ok) {
    const body = await res.json().catch(() => undefined) as { error?: { code?: string, message?: string } } | undefined
    throw new Error(`${res.status} ${body?.error?.code ?? res.statusText}${body?.error?.message === undefined ? '' : `: ${body.error.message}`}`)
  }
  return await res.json() as T
}

export class SessionApi {
  constructor (readonly base: string) {}

  async create (clientId: string): Promise<CreatedSession> {
    return await request(`${this.base}/sessions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: clientId }),
    })
  }

  async status (sessionId: string): Promise<SessionView> {
    return await request(`${this.base}/sessions/${encodeURIComponent(sessionId)}`)
  }

  async operators (sessionId: string): Promise<OperatorView[]> {
    return (await request<OperatorList>(`${this.base}/sessions/${encodeURIComponent(sessionId)}/operators`)).operators
  }
}

/** A v4 UUID; also on plain-http pages, where crypto.randomUUID is missing. */
export function randomUuid (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[6] = (bytes[6]! & 0x0f) | 0x40
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
