import type WebSocket from 'ws'
import { CloseCode } from '@streaming-service/protocol'

interface ReceiverInternals { _receiver?: { _maxPayload?: unknown } }

/**
 * Lowers the largest message `socket` accepts from its peer to `maxBytes`.
 * ws takes one `maxPayload` per server (the publishers' WS_MAX_MESSAGE_SIZE)
 * and checks it against each frame's declared length, before buffering any
 * of it: lowering it on the socket's receiver makes an oversized message
 * close the socket with 1009 without the relay holding its bytes. ws has no
 * public per-socket setting, so this reaches into its receiver (ws 8);
 * packages/relay/test/hostile-peers.test.ts fails if that stops working.
 * Should it ever be missing, a larger message still closes the socket, only
 * after ws buffered it.
 */
export function limitIncomingMessages (socket: WebSocket, maxBytes: number): void {
  const receiver = (socket as unknown as ReceiverInternals)._receiver
  if (receiver !== undefined && typeof receiver._maxPayload === 'number') {
    receiver._maxPayload = maxBytes
    return
  }
  socket.on('message', (data: Buffer) => {
    if (data.length > maxBytes) socket.close(CloseCode.tooLarge, 'message too large')
  })
}
