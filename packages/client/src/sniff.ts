const latin1 = new TextDecoder('latin1')
const WEBM_CLUSTER_ID = '\x1f\x43\xb6\x75'

/**
 * The MediaSource type of a stream from its first bytes: WebM (EBML magic) or
 * fragmented MP4 (`ftyp` box), with codecs taken from the codec ids in the
 * init segment (a heuristic: the scanners on the relay walk the structure);
 * undefined for any other stream.
 */
export function sniffMimeType (head: Uint8Array): string | undefined {
  const text = latin1.decode(head.subarray(0, 16_384))
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) {
    const init = text.split(WEBM_CLUSTER_ID, 1)[0]!
    const video = init.includes('V_VP9') ? 'vp9' : init.includes('V_MPEG4/ISO/AVC') ? 'avc1.42E01E' : init.includes('V_VP8') ? 'vp8' : undefined
    const audio = init.includes('A_OPUS') ? 'opus' : init.includes('A_VORBIS') ? 'vorbis' : undefined
    // MediaRecorder's own default when the init segment is cut short.
    if (video === undefined && audio === undefined) return 'video/webm; codecs="vp8"'
    return codecType('webm', video, audio)
  }
  if (text.slice(4, 8) === 'ftyp') {
    const init = text.split('moof', 1)[0]!
    const avcC = init.indexOf('avcC')
    // avcC: configurationVersion, then the profile, compatibility and level bytes.
    const video = avcC !== -1 && avcC + 8 <= head.length
      ? `avc1.${hex(head[avcC + 5]!)}${hex(head[avcC + 6]!)}${hex(head[avcC + 7]!)}`
      : init.includes('avc1') ? 'avc1.42E01E' : undefined
    const audio = init.includes('mp4a') ? 'mp4a.40.2' : undefined
    if (video === undefined && audio === undefined) return 'video/mp4; codecs="avc1.42E01E"'
    return codecType('mp4', video, audio)
  }
  return undefined
}

function codecType (container: string, video: string | undefined, audio: string | undefined): string {
  const codecs = [video, audio].filter((codec) => codec !== undefined).join(',')
  return `${video === undefined ? 'audio' : 'video'}/${container}; codecs="${codecs}"`
}

function hex (byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0')
}
