import WebSocket from 'ws'

interface Teardown { teardown (fn: () => unknown): void }

export interface ReceivedMessage { data: Buffer, binary: boolean }

export interface TestSocket {
  socket: WebSocket
  /** Resolves when open; rejects if the socket closes first. */
  opened: Promise<void>
  /** Every message received so far, in order. */
  messages: ReceivedMessage[]
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number, reason: string }>
  /** Waits until at least `count` messages arrived. */
  waitForMessages (count: number, timeoutMs?: number): Promise<ReceivedMessage[]>
  send (data: Buffer | string): Promise<void>
  close (code?: number): Promise<{ code: number, reason: string }>
}

/** A real `ws` client that records what it receives; terminated at teardown. `headers`: of the upgrade request. */
export function openSocket (t: Teardown, url: string, options: { headers?: Record<string, string> } = {}): TestSocket {
  const socket = new WebSocket(url, { perMessageDeflate: false, ...(options.headers === undefined ? {} : { headers: options.headers }) })
  const messages: ReceivedMessage[] = []
  const waiters = new Set<() => void>()
  socket.on('message', (data: Buffer, binary: boolean) => {
    messages.push({ data, binary })
    for (const wake of waiters) wake()
  })
  socket.on('error', () => {})
  const closed = new Promise<{ code: number, reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() })
      for (const wake of waiters) wake()
    })
  })
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    void closed.then(({ code, reason }) => reject(new Error(`closed before open: ${code} ${reason}`)))
  })
  opened.catch(() => {})
  t.teardown(() => { socket.terminate() })
  return {
    socket,
    opened,
    messages,
    closed,
    async waitForMessages (count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (messages.length < count) {
        if (socket.readyState === WebSocket.CLOSED) throw new Error(`socket closed after ${messages.length}/${count} messages`)
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`only ${messages.length}/${count} messages within ${timeoutMs} ms`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, left)
          function done () { clearTimeout(timer); waiters.delete(done); resolve() }
          waiters.add(done)
        })
      }
      return messages.slice(0, count)
    },
    async send (data) {
      await new Promise<void>((resolve, reject) => socket.send(data, { binary: typeof data !== 'string' }, (err) => err === undefined || err === null ? resolve() : reject(err)))
    },
    async close (code = 1000) {
      socket.close(code)
      return await closed
    },
  }
}

/** A `ws` client once it is open (uncompressed, as a relay's publishers and operators are); rejects if it closes or fails first. */
export async function openWebSocket (url: string): Promise<WebSocket> {
  return await new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false })
    socket.once('open', () => resolve(socket))
    socket.once('close', (code) => reject(new Error(`${url} closed before open: ${code}`)))
    socket.once('error', reject)
  })
}

/**
 * Idle `ws` clients opened `batch` at a time (a burst of thousands of
 * handshakes would only measure the listen backlog); resolves once all are
 * open, rejects on the first that fails. The caller closes them.
 */
export async function openIdleSockets (urls: string[], batch = 25): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < urls.length; i += batch) sockets.push(...await Promise.all(urls.slice(i, i + batch).map(openWebSocket)))
  return sockets
}
