import { randomUUID } from 'node:crypto'
import { MAX_FRAME_KIND, MIN_FRAME_KIND, type Frame } from './types.js'

/**
 * The wire format of one backplane message (all integers big-endian):
 *
 *   offset  size  field
 *   0       1     version (1)
 *   1       1     kind (1–255; opaque to the backplane)
 *   2       16    origin node id (the UUID's raw bytes)
 *   18      4     seq, high 21 bits (seq is a uint53)
 *   22      4     seq, low 32 bits
 *   26      8     sentAt: publisher's wall clock, ms since the epoch (float64; 0 = unknown)
 *   34      n     payload, as is
 *
 * A message is encoded once per publish (one allocation, one copy of the
 * payload) and decoded without copying: the decoded payload is a view into
 * the received buffer.
 */
export const ENVELOPE_VERSION = 1
export const ENVELOPE_HEADER_BYTES = 34

const ORIGIN_OFFSET = 2
const SEQ_HIGH_OFFSET = 18
const SEQ_LOW_OFFSET = 22
const SENT_AT_OFFSET = 26
const TWO_POW_32 = 0x1_0000_0000
/** Largest high word of a safe integer (2^53 - 1 >> 32). */
const MAX_SEQ_HIGH = 0x1f_ffff

function isFrameKind (kind: unknown): kind is number {
  return typeof kind === 'number' && Number.isInteger(kind) && kind >= MIN_FRAME_KIND && kind <= MAX_FRAME_KIND
}

export interface Envelope extends Frame {
  /** The origin node id's 16 raw bytes: a view into the message. */
  readonly origin: Buffer
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function newNodeId (): string {
  return randomUUID()
}

export function isNodeId (id: string): boolean {
  return UUID.test(id)
}

/** A UUID string to its 16 raw bytes. Throws a RangeError for anything else. */
export function nodeIdToBytes (nodeId: string): Buffer {
  if (!isNodeId(nodeId)) throw new RangeError(`node id must be a UUID, got "${nodeId}"`)
  return Buffer.from(nodeId.replaceAll('-', ''), 'hex')
}

/** 16 raw bytes (at `offset`) to the lower-case UUID string. */
export function nodeIdFromBytes (bytes: Buffer, offset = 0): string {
  const hex = bytes.toString('hex', offset, offset + 16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Whether the frame can be encoded: a kind byte and a uint53 seq. Cheap; never throws. */
export function isEncodable (frame: Frame): boolean {
  return isFrameKind(frame.kind) && Number.isSafeInteger(frame.seq) && frame.seq >= 0 &&
    Buffer.isBuffer(frame.payload)
}

/**
 * Encodes a frame behind the header. `origin` is the publishing node's id as
 * 16 bytes (see nodeIdToBytes). Throws a RangeError for a frame that is not
 * encodable (check with isEncodable on a path that must not throw).
 */
export function encodeEnvelope (origin: Buffer, frame: Frame): Buffer {
  const message = Buffer.allocUnsafe(envelopeBytes(frame))
  writeEnvelope(message, 0, origin, frame)
  return message
}

/** The encoded size of `frame`. */
export function envelopeBytes (frame: Frame): number {
  return ENVELOPE_HEADER_BYTES + frame.payload.length
}

/**
 * Writes the envelope of `frame` into `target` at `offset` (envelopeBytes
 * long), so a transport can put it inside its own message without a second
 * copy. Throws a RangeError as encodeEnvelope does.
 */
export function writeEnvelope (target: Buffer, offset: number, origin: Buffer, frame: Frame): void {
  if (origin.length !== 16) throw new RangeError(`origin must be 16 bytes, got ${origin.length}`)
  if (!isEncodable(frame)) throw new RangeError(`frame is not encodable (kind ${String(frame.kind)}, seq ${String(frame.seq)})`)
  target[offset] = ENVELOPE_VERSION
  target[offset + 1] = frame.kind
  origin.copy(target, offset + ORIGIN_OFFSET)
  target.writeUInt32BE(Math.floor(frame.seq / TWO_POW_32), offset + SEQ_HIGH_OFFSET)
  target.writeUInt32BE(frame.seq >>> 0, offset + SEQ_LOW_OFFSET)
  target.writeDoubleBE(frame.sentAt ?? 0, offset + SENT_AT_OFFSET)
  frame.payload.copy(target, offset + ENVELOPE_HEADER_BYTES)
}

/**
 * Decodes a message without copying: origin and payload are views into
 * `message`. Returns null for anything that is not a version-1 envelope
 * (truncated, kind 0, another version, out-of-range seq); never throws.
 */
export function decodeEnvelope (message: Buffer): Envelope | null {
  if (!Buffer.isBuffer(message) || message.length < ENVELOPE_HEADER_BYTES || message[0] !== ENVELOPE_VERSION) return null
  const kind = message[1]!
  if (kind < MIN_FRAME_KIND) return null
  const high = message.readUInt32BE(SEQ_HIGH_OFFSET)
  if (high > MAX_SEQ_HIGH) return null
  const sentAt = message.readDoubleBE(SENT_AT_OFFSET)
  // One object shape whether sentAt is known or not (a conditional spread made two, and cost a copy per message).
  return {
    kind,
    seq: high * TWO_POW_32 + message.readUInt32BE(SEQ_LOW_OFFSET),
    sentAt: sentAt > 0 ? sentAt : undefined,
    origin: message.subarray(ORIGIN_OFFSET, ORIGIN_OFFSET + 16),
    payload: message.subarray(ENVELOPE_HEADER_BYTES),
  }
}

/**
 * Whether `message` is an envelope published by `origin` (16 bytes), read in
 * place: a node drops its own publications coming back before decoding them.
 */
export function isFromOrigin (message: Buffer, origin: Buffer): boolean {
  return message.length >= ENVELOPE_HEADER_BYTES && message.compare(origin, 0, 16, ORIGIN_OFFSET, ORIGIN_OFFSET + 16) === 0
}

/** The origin's UUID string, cached on `holder` (a session: usually one publisher), so it is not rebuilt per frame. */
export function originIdOf (holder: { lastOrigin?: { bytes: Buffer, id: string } }, bytes: Buffer): string {
  const last = holder.lastOrigin
  if (last !== undefined && last.bytes.equals(bytes)) return last.id
  const id = nodeIdFromBytes(bytes)
  // A copy: the cache must not keep the received socket data alive.
  holder.lastOrigin = { bytes: Buffer.from(bytes), id }
  return id
}
