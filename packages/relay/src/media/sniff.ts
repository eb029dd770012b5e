import { Mp4Scanner } from './mp4.js'
import type { ScannerOptions } from './scan-limits.js'
import type { ContainerScanner } from './scanner.js'
import { WebmScanner } from './webm.js'

export type ContainerFormat = 'webm' | 'mp4'
export type Sniffed = ContainerFormat | 'opaque' | 'undecided'

const EBML_MAGIC = [0x1a, 0x45, 0xdf, 0xa3]
const FTYP = [0x66, 0x74, 0x79, 0x70]

/**
 * The container a stream's first bytes announce: WebM by the EBML magic
 * `1A 45 DF A3`, MP4 by a first box of type `ftyp` (whose size, a few dozen
 * bytes, starts with two zero bytes). `undecided` while the bytes seen are a
 * prefix of either; anything else (JPEG, JSON, raw bytes) is `opaque`.
 */
export function sniffContainer (firstBytes: Buffer): Sniffed {
  const webm = matches(firstBytes, 0, EBML_MAGIC)
  const mp4 = matches(firstBytes, 0, [0, 0]) && matches(firstBytes, 4, FTYP)
  if (webm && firstBytes.length >= EBML_MAGIC.length) return 'webm'
  if (mp4 && firstBytes.length >= 8) return 'mp4'
  return webm || mp4 ? 'undecided' : 'opaque'
}

/** Whether the bytes present at `offset…` agree with `expected` (missing bytes agree). */
function matches (bytes: Buffer, offset: number, expected: number[]): boolean {
  for (let i = 0; i < expected.length && offset + i < bytes.length; i++) {
    if (bytes[offset + i] !== expected[i]) return false
  }
  return true
}

export function createScanner (format: ContainerFormat, options?: ScannerOptions): ContainerScanner {
  return format === 'webm' ? new WebmScanner(options) : new Mp4Scanner(options)
}
