/**
 * The ceiling: the plainest single-process `ws` broadcast. A room is the
 * request path; its first connection publishes and each of its messages is
 * `client.send(data)` to every other client of the room. No admission, no
 * backplane, no bound on slow readers. run.ts transpiles this file to plain
 * JavaScript and runs it with bare `node`, so no loader inflates its memory.
 *
 * Prints one JSON line `{"msg":"listening","port":…}` once it listens.
 */
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

interface Room { publisher: WebSocket, clients: Set<WebSocket> }

const rooms = new Map<string, Room>()
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 10 * 1024 * 1024 })

server.on('connection', (socket, request) => {
  const name = request.url ?? '/'
  const room = rooms.get(name)
  if (room === undefined) {
    const created: Room = { publisher: socket, clients: new Set() }
    rooms.set(name, created)
    socket.on('message', (data: Buffer) => {
      for (const client of created.clients) client.send(data)
    })
    socket.on('close', () => rooms.delete(name))
  } else {
    room.clients.add(socket)
    socket.on('close', () => room.clients.delete(socket))
  }
  socket.on('error', () => {})
})

server.on('listening', () => {
  const address = server.address() as AddressInfo
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port: address.port })}\n`)
})

process.on('SIGTERM', () => server.close(() => process.exit(0)))
