export function formatBytes (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

export function formatBitrate (bitsPerSecond: number): string {
  return bitsPerSecond < 1_000_000 ? `${Math.round(bitsPerSecond / 1000)} kbit/s` : `${(bitsPerSecond / 1_000_000).toFixed(2)} Mbit/s`
}

export function formatClose (code: number | null, reason: string): string {
  return code === null ? '—' : `${code}${reason === '' ? '' : ` ${reason}`}`
}

export function formatMs (ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '—' : `${Math.round(ms)} ms`
}

/** Bits per second from a growing byte counter, sampled by the caller about once a second. */
export class RateMeter {
  #bytes = 0
  #at = Date.now()
  bitsPerSecond = 0

  update (totalBytes: number): number {
    const now = Date.now()
    if (totalBytes < this.#bytes) this.#bytes = totalBytes
    if (now - this.#at >= 500) {
      this.bitsPerSecond = (totalBytes - this.#bytes) * 8 * 1000 / (now - this.#at)
      this.#bytes = totalBytes
      this.#at = now
    }
    return this.bitsPerSecond
  }
}

export function median (values: number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
