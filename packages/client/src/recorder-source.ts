import type { StreamSource } from './publisher.js'

export interface RecorderSourceOptions {
  /** WebM/VP8 by default: MediaRecorder's MP4 ignores the timeslice (one fragment per keyframe). */
  mimeType?: string
  /** How often the recorder hands over data (ms); the stream's latency floor. */
  timesliceMs?: number
  /** A keyframe (and so a WebM Cluster) this often (ms): how soon a late joiner can start. */
  keyframeIntervalMs?: number
  videoBitsPerSecond?: number
}

// Not yet in TypeScript's DOM types; Chromium honours it for VP8 and H.264.
interface RecorderOptions extends MediaRecorderOptions {
  videoKeyFrameIntervalDuration?: number
}

/**
 * A `StreamSource` recording `stream` with MediaRecorder: a new recorder per
 * connection, so every connection's stream begins with a WebM init segment.
 */
export function recorderSource (stream: MediaStream, options: RecorderSourceOptions = {}): StreamSource {
  const recorderOptions: RecorderOptions = {
    mimeType: options.mimeType ?? 'video/webm;codecs=vp8',
    videoKeyFrameIntervalDuration: options.keyframeIntervalMs ?? 1000,
  }
  if (options.videoBitsPerSecond !== undefined) recorderOptions.videoBitsPerSecond = options.videoBitsPerSecond
  return (sink) => {
    const recorder = new MediaRecorder(stream, recorderOptions)
    recorder.ondataavailable = (event) => {
      if (event.data.size > 0) sink.send(event.data)
    }
    recorder.start(options.timesliceMs ?? 200)
    return {
      stop () {
        recorder.ondataavailable = null
        if (recorder.state !== 'inactive') recorder.stop()
      },
    }
  }
}
