/**
 * `pnpm bench:fanout`: the CPU one process spends writing the same message to
 * many WebSocket connections, with ws's own `send` per socket against the
 * relay's framed-once `writeMessage` (packages/relay/src/frames.ts). The
 * readers live in a child process. Medians of interleaved repetitions of
 * each case; CPU = user + system time of this process (the writer).
 *
 *   N=<sockets> SIZE=<bytes> MESSAGES=<per repetition> (one case), else a few cases
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'
import { OutgoingMessage, writeMessage } from '../packages/relay/src/frames.js'

const REPEAT = 5

interface Case { sockets: number, size: number, messages: number }

async function reader (port: number, sockets: number): Promise<void> {
  let open = 0
  for (let i = 0; i < sockets; i++) {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
    socket.on('open', () => { if (++open === sockets) process.send!('ready') })
    socket.on('message', () => {})
  }
  await once(process, 'disconnect')
  process.exit(0)
}

async function measure ({ sockets: count, size, messages }: Case): Promise<{ send: number, framed: number }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await once(wss, 'listening')
  const sockets: WebSocket[] = []
  wss.on('connection', (socket) => sockets.push(socket))
  const child = fork(fileURLToPath(import.meta.url), ['--reader', String((wss.address() as AddressInfo).port), String(count)], { execArgv: process.execArgv })
  await once(child, 'message')
  const payload = Buffer.alloc(size, 7)
  // Every 10 messages, wait for the readers: the kernel's buffers, not ws's, bound what is in flight.
  const drained = async (): Promise<void> => {
    while (sockets.some((socket) => socket.bufferedAmount > 0)) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const run = async (framed: boolean): Promise<number> => {
    const start = process.cpuUsage()
    for (let i = 0; i < messages; i++) {
      if (framed) {
        const message = new OutgoingMessage(payload, true, sockets.length)
        for (const socket of sockets) writeMessage(socket, message)
      } else {
        for (const socket of sockets) socket.send(payload, { binary: true })
      }
      if (i % 10 === 9) await drained()
    }
    await drained()
    const used = process.cpuUsage(start)
    return (used.user + used.system) / 1000
  }
  const times = { send: [] as number[], framed: [] as number[] }
  for (let r = 0; r < REPEAT; r++) {
    for (const framed of r % 2 === 0 ? [true, false] : [false, true]) times[framed ? 'framed' : 'send'].push(await run(framed))
  }
  child.disconnect()
  for (const socket of sockets) socket.terminate()
  await new Promise((resolve) => wss.close(resolve))
  const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  return { send: median(times.send), framed: median(times.framed) }
}

async function main (): Promise<void> {
  const one = process.env.N === undefined
    ? undefined
    : { sockets: Number(process.env.N), size: Number(process.env.SIZE ?? 16384), messages: Number(process.env.MESSAGES ?? 300) }
  const cases: Case[] = one !== undefined
    ? [one]
    : [{ sockets: 200, size: 16384, messages: 300 }, { sockets: 67, size: 16384, messages: 900 }, { sockets: 2, size: 8192, messages: 20_000 }, { sockets: 5, size: 1024, messages: 20_000 }]
  console.log(`writer CPU ms, median of ${REPEAT} interleaved repetitions`)
  console.log('sockets  message  messages    ws.send  writeMessage  ratio')
  for (const c of cases) {
    const { send, framed } = await measure(c)
    console.log(`${String(c.sockets).padStart(7)}  ${String(c.size).padStart(7)}  ${String(c.messages).padStart(8)}  ${send.toFixed(0).padStart(9)}  ${framed.toFixed(0).padStart(12)}  ${(framed / send).toFixed(2).padStart(5)}`)
  }
}

if (process.argv[2] === '--reader') await reader(Number(process.argv[3]), Number(process.argv[4]))
else await main()
