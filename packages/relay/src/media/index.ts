export { ContainerScanner, MAX_INIT_BYTES, type ScanEvent, type ScannerOptions, type ScannerState } from './scanner.js'
export { createScanner, sniffContainer, type ContainerFormat, type Sniffed } from './sniff.js'
export { WebmScanner, videoTrackNumbers } from './webm.js'
export { Mp4Scanner, isSyncSample } from './mp4.js'
