import { encodeTimestamp, PATTERN_HEIGHT, PATTERN_WIDTH, STRIP } from './timestamp-code.js'

export interface TestPattern {
  canvas: HTMLCanvasElement
  stream: MediaStream
  stop (): void
}

/**
 * A generated video source: moving colours, the sender's clock as text and as
 * a strip of bit blocks (see timestamp-code.ts) that a viewer reads back to
 * measure glass-to-glass latency.
 */
export function startTestPattern (canvas: HTMLCanvasElement, fps = 30): TestPattern {
  canvas.width = PATTERN_WIDTH
  canvas.height = PATTERN_HEIGHT
  // An opaque canvas: with alpha, Chromium records VP8 with alpha, whose blocks carry no keyframe flags.
  const context = canvas.getContext('2d', { alpha: false })
  if (context === null) throw new Error('no 2D canvas context')
  let frame = 0
  const paint = () => {
    const now = Date.now()
    context.fillStyle = '#1d2733'
    context.fillRect(0, 0, PATTERN_WIDTH, PATTERN_HEIGHT)
    context.fillStyle = `hsl(${(frame * 3) % 360} 70% 55%)`
    context.fillRect((frame * 6) % (PATTERN_WIDTH + 80) - 80, 24, 80, 80)
    context.fillStyle = '#ffffff'
    context.font = 'bold 64px monospace'
    context.fillText(new Date(now).toISOString().slice(11, 23), 40, 190)
    context.font = '22px sans-serif'
    context.fillText(`streaming-service test pattern · frame ${frame}`, 40, 240)
    encodeTimestamp(now).forEach((bit, i) => {
      context.fillStyle = bit ? '#ffffff' : '#000000'
      context.fillRect(STRIP.x + i * STRIP.blockWidth, STRIP.y, STRIP.blockWidth, STRIP.height)
    })
    frame++
  }
  paint()
  const timer = setInterval(paint, 1000 / fps)
  const stream = canvas.captureStream(fps)
  return {
    canvas,
    stream,
    stop () {
      clearInterval(timer)
      for (const track of stream.getTracks()) track.stop()
    },
  }
}
