/** Messages shorter than this are copied into a shared chunk instead of being held one by one. */
export const COALESCE_BELOW = 4096
/** A chunk starts this small and doubles as messages are copied into it, up to CHUNK_MAX. */
const CHUNK_MIN = 512
const CHUNK_MAX = 16 * 1024
/** A message is held by reference only when its memory is (nearly) all its own. */
const SHARED_SLACK = 1 / 8

/**
 * The recent bytes of one stream, addressed by stream offset, held as a
 * queue of buffers: a message of COALESCE_BELOW bytes or more by reference
 * (copied first if it is a view into a much larger buffer, so holding it does
 * not pin that buffer); smaller ones copied, back to back, into a chunk that
 * doubles up to 16 KB. Bytes are only appended, never modified, so views
 * handed out by `parts` stay valid.
 *
 * `retainedBytes` is the memory the buffers pin (chunks count their unused
 * tail). Every buffer pins at least min(COALESCE_BELOW, CHUNK_MIN) bytes, so
 * however the stream is split there are at most
 * `2 * retainedBytes / (COALESCE_BELOW + CHUNK_MIN) + 1` of them (a chunk can
 * sit between every two referenced messages): the per-buffer overhead of a
 * few dozen bytes never dominates.
 */
export class HeldBytes {
  #buffers: Buffer[] = []
  /** Stream offset of each buffer's first byte. */
  #offsets: number[] = []
  /** Index of the first live buffer (the arrays are compacted now and then). */
  #head = 0
  /** Whether the last buffer is a chunk still taking messages. */
  #chunkOpen = false
  #end = 0
  #retained = 0

  /** Stream offset after the last byte. */
  get end (): number { return this.#end }

  /** Stream offset of the first byte held; undefined when nothing is. */
  get start (): number | undefined { return this.#head < this.#buffers.length ? this.#offsets[this.#head] : undefined }

  get retainedBytes (): number { return this.#retained }

  get buffers (): number { return this.#buffers.length - this.#head }

  /** Appends the stream's next bytes. The caller must not modify a message it pushed. */
  append (message: Buffer): void {
    if (message.length === 0) return
    if (message.length < COALESCE_BELOW) {
      this.#copy(message)
    } else {
      const own = message.buffer.byteLength <= message.length * (1 + SHARED_SLACK)
      this.#add(own ? message : Buffer.from(message))
      this.#chunkOpen = false
    }
    this.#end += message.length
  }

  #copy (message: Buffer): void {
    const last = this.#buffers.length - 1
    if (this.#chunkOpen) {
      const chunk = this.#buffers[last]!
      const used = this.#end - this.#offsets[last]!
      if (used + message.length <= chunk.length) {
        message.copy(chunk, used)
        return
      }
      if (used + message.length <= CHUNK_MAX) {
        let capacity = chunk.length * 2
        while (capacity < used + message.length) capacity *= 2
        const grown = Buffer.allocUnsafeSlow(capacity)
        chunk.copy(grown, 0, 0, used)
        message.copy(grown, used)
        this.#buffers[last] = grown
        this.#retained += capacity - chunk.length
        return
      }
    }
    let capacity = CHUNK_MIN
    while (capacity < message.length) capacity *= 2
    const chunk = Buffer.allocUnsafeSlow(capacity)
    message.copy(chunk)
    this.#add(chunk)
    this.#chunkOpen = true
  }

  #add (buffer: Buffer): void {
    this.#buffers.push(buffer)
    this.#offsets.push(this.#end)
    this.#retained += pinned(buffer)
  }

  /** Bytes of the buffer at `index` that belong to the stream (a chunk's unused tail does not). */
  #usedOf (index: number): number {
    return (index + 1 < this.#buffers.length ? this.#offsets[index + 1]! : this.#end) - this.#offsets[index]!
  }

  #dropFirst (): void {
    const buffer = this.#buffers[this.#head]!
    this.#buffers[this.#head] = EMPTY
    this.#retained -= pinned(buffer)
    if (++this.#head === this.#buffers.length) {
      this.clear()
    } else if (this.#head > 32 && this.#head * 2 > this.#buffers.length) {
      this.#buffers = this.#buffers.slice(this.#head)
      this.#offsets = this.#offsets.slice(this.#head)
      this.#head = 0
    }
  }

  /** Forgets the buffers that end at or before stream offset `offset`. */
  dropBefore (offset: number): void {
    while (this.#head < this.#buffers.length && this.#offsets[this.#head]! + this.#usedOf(this.#head) <= offset) this.#dropFirst()
  }

  /** Forgets buffers from the front until at most `bytes` are retained (all of them if need be). */
  trimTo (bytes: number): void {
    while (this.#retained > bytes && this.#head < this.#buffers.length) this.#dropFirst()
  }

  /** Forgets everything held; the stream continues at the same offset. */
  clear (): void {
    this.#buffers = []
    this.#offsets = []
    this.#head = 0
    this.#chunkOpen = false
    this.#retained = 0
  }

  /** Forgets everything and starts a new stream at offset 0. */
  restart (): void {
    this.clear()
    this.#end = 0
  }

  /** The bytes from stream offset `from` (at or after `start`) to the end, as views. */
  parts (from: number): Buffer[] {
    const parts: Buffer[] = []
    for (let i = this.#head; i < this.#buffers.length; i++) {
      const offset = this.#offsets[i]!
      const used = this.#usedOf(i)
      if (offset + used <= from) continue
      const buffer = this.#buffers[i]!
      parts.push(offset >= from && used === buffer.length ? buffer : buffer.subarray(Math.max(0, from - offset), used))
    }
    return parts
  }
}

const EMPTY = Buffer.alloc(0)

/** The memory a held buffer keeps alive: its whole ArrayBuffer (chunks and copies have their own). */
function pinned (buffer: Buffer): number {
  return buffer.buffer.byteLength
}
