import { clockDelta, decodeTimestamp, PATTERN_HEIGHT, STRIP, stripSamplePoints } from './timestamp-code.js'

/** Samples kept: a few minutes at the console's 10 per second. */
const MAX_SAMPLES = 3000

/**
 * Glass-to-glass latency of a test-pattern stream: reads the sender's clock
 * from the frame on screen and compares it with this page's Date.now()
 * (both ends on one clock, e.g. one machine, or clocks in sync).
 */
export class LatencyProbe {
  /** [Date.now(), latency ms], oldest first. */
  readonly samples: Array<[number, number]> = []
  readonly #video: HTMLVideoElement
  readonly #canvas = document.createElement('canvas')
  readonly #context: CanvasRenderingContext2D | null

  constructor (video: HTMLVideoElement) {
    this.#video = video
    this.#context = this.#canvas.getContext('2d', { willReadFrequently: true })
  }

  /** Reads the frame on screen; the latency in ms, or undefined when it carries no readable stamp. */
  sample (): number | undefined {
    const { videoWidth: width, videoHeight: height } = this.#video
    if (this.#context === null || width === 0 || height === 0) return undefined
    const top = Math.floor(STRIP.y * height / PATTERN_HEIGHT)
    const rows = Math.max(1, Math.ceil(STRIP.height * height / PATTERN_HEIGHT))
    if (this.#canvas.width !== width || this.#canvas.height !== rows) {
      this.#canvas.width = width
      this.#canvas.height = rows
    }
    this.#context.drawImage(this.#video, 0, top, width, rows, 0, 0, width, rows)
    const pixels = this.#context.getImageData(0, 0, width, rows).data
    const bits = stripSamplePoints(width, height).map(({ x, y }) => luma(pixels, width, x, Math.min(rows - 1, y - top)) > 128)
    const stamp = decodeTimestamp(bits)
    if (stamp === undefined) return undefined
    const now = Date.now()
    const latency = clockDelta(now, stamp)
    // A stamp from the future or minutes old is a misread, not a latency.
    if (latency < -100 || latency > 60_000) return undefined
    this.samples.push([now, latency])
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES)
    return latency
  }
}

/** Mean luma of the 3×3 pixels around (x, y). */
function luma (pixels: Uint8ClampedArray, width: number, x: number, y: number): number {
  let sum = 0
  let count = 0
  for (let dx = -1; dx <= 1; dx++) {
    const px = Math.min(width - 1, Math.max(0, x + dx))
    const offset = (y * width + px) * 4
    sum += 0.299 * pixels[offset]! + 0.587 * pixels[offset + 1]! + 0.114 * pixels[offset + 2]!
    count++
  }
  return sum / count
}
