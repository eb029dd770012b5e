// The test pattern's machine-readable clock, shared by the painter (publisher)
// and the reader (viewer): a strip of black and white blocks, one bit each,
// large enough to survive VP8 at a modest bitrate. No DOM here.

export const PATTERN_WIDTH = 640
export const PATTERN_HEIGHT = 360

/** 32 bits of the sender's Date.now() (ms, wrapping every ~49 days) and 8 check bits. */
export const CODE_BITS = 40

/** The strip in pattern pixels: 16×32 blocks on VP8's 16-pixel macroblock grid, at the bottom. */
export const STRIP = { x: 0, y: 304, blockWidth: 16, height: 32 } as const

const CLOCK = 2 ** 32

function checkByte (value: number): number {
  const bytes = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]
  return ((bytes[0]! + 3 * bytes[1]! + 5 * bytes[2]! + 7 * bytes[3]!) ^ 0xa5) & 0xff
}

/** The strip's bits, most significant first, for a time in ms. */
export function encodeTimestamp (ms: number): boolean[] {
  const value = ms % CLOCK
  const check = checkByte(value)
  const bits: boolean[] = []
  for (let i = 31; i >= 0; i--) bits.push(Math.floor(value / 2 ** i) % 2 === 1)
  for (let i = 7; i >= 0; i--) bits.push(((check >> i) & 1) === 1)
  return bits
}

/** The clock value read back from the strip's bits; undefined when the check bits disagree. */
export function decodeTimestamp (bits: readonly boolean[]): number | undefined {
  if (bits.length !== CODE_BITS) return undefined
  let value = 0
  for (let i = 0; i < 32; i++) value = value * 2 + (bits[i] === true ? 1 : 0)
  let check = 0
  for (let i = 32; i < CODE_BITS; i++) check = check * 2 + (bits[i] === true ? 1 : 0)
  return check === checkByte(value) ? value : undefined
}

/** `now - stamp` in ms on the wrapping 32-bit clock (negative when the stamp is ahead). */
export function clockDelta (now: number, stamp: number): number {
  const delta = ((now % CLOCK) - stamp + CLOCK) % CLOCK
  return delta >= CLOCK / 2 ? delta - CLOCK : delta
}

/** Where to sample each bit (block centres) in a decoded frame of the given size. */
export function stripSamplePoints (frameWidth: number, frameHeight: number): Array<{ x: number, y: number }> {
  const sx = frameWidth / PATTERN_WIDTH
  const sy = frameHeight / PATTERN_HEIGHT
  const y = Math.floor((STRIP.y + STRIP.height / 2) * sy)
  return Array.from({ length: CODE_BITS }, (_, i) => ({ x: Math.floor((STRIP.x + (i + 0.5) * STRIP.blockWidth) * sx), y }))
}
