/**
 * The naive baseline: what a user might write instead of this project — a
 * `ws` server per node and ioredis, one SUBSCRIBE per session. A publisher's
 * message is PUBLISHed to the session's channel and every node, its own
 * included, sends what it receives from Redis to its local operators. No
 * admission, no late join, no slow-reader policy, no ordering checks. run.ts
 * transpiles it to plain JavaScript and starts it with bare `node`, like the
 * ceiling.
 *
 *   node naive-relay.mjs <redis url> <channel prefix>
 *
 * URLs: /room/<session> for operators, /room/<session>?publish for the publisher.
 * Prints one JSON line `{"msg":"listening","port":…}` once it listens.
 */
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { WebSocketServer, type WebSocket } from 'ws'

const [redisUrl = 'redis://127.0.0.1:6379', prefix = 'naive:'] = process.argv.slice(2)
const pub = new Redis(redisUrl)
const sub = new Redis(redisUrl)
const rooms = new Map<string, Set<WebSocket>>()

sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  for (const socket of rooms.get(channel.toString()) ?? []) socket.send(message)
})

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 10 * 1024 * 1024 })
server.on('connection', (socket, request) => {
  const url = new URL(request.url ?? '/', 'http://naive')
  const channel = prefix + url.pathname
  socket.on('error', () => {})
  if (url.searchParams.has('publish')) {
    socket.on('message', (data: Buffer) => { void pub.publish(channel, data) })
    return
  }
  let room = rooms.get(channel)
  if (room === undefined) {
    room = new Set()
    rooms.set(channel, room)
    void sub.subscribe(channel)
  }
  room.add(socket)
  socket.on('close', () => {
    room.delete(socket)
    if (room.size === 0 && rooms.get(channel) === room) {
      rooms.delete(channel)
      void sub.unsubscribe(channel)
    }
  })
})

server.on('listening', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port: (server.address() as AddressInfo).port })}\n`)
})

process.on('SIGTERM', () => { pub.disconnect(); sub.disconnect(); server.close(() => process.exit(0)) })
