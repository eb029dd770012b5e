/**
 * Redis Cluster's key slot (CRC16/XMODEM of the key, or of its first non-empty
 * `{hash tag}`, modulo 16384): the same number `CLUSTER KEYSLOT` answers, for
 * keys and sharded pub/sub channels alike.
 */
export const SLOT_COUNT = 16384

const TABLE = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let crc = i << 8
  for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  TABLE[i] = crc
}

function crc16 (bytes: Buffer, start: number, end: number): number {
  let crc = 0
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!
  return crc
}

export function keySlot (key: string): number {
  const bytes = Buffer.from(key)
  const open = bytes.indexOf(0x7b)
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOT_COUNT
  }
  return crc16(bytes, 0, bytes.length) % SLOT_COUNT
}
