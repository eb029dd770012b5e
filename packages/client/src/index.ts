export { backoffDelay, defaultBackoff, type BackoffOptions } from './backoff.js'
export { closeAction, CloseCode, type CloseAction } from './close-codes.js'
export {
  ReconnectingSocket, type CloseInfo, type ConnectionEvents, type ConnectionOptions, type ConnectionState, type ConnectionStats,
  type OutgoingData, type WebSocketConstructor, type WebSocketLike,
} from './connection.js'
export { withCredential, type ConnectTarget, type CredentialOptions, type CredentialPlacement, type CredentialSource, type TargetSource } from './credentials.js'
export { MsePlayer, playViewer, type MsePlayerOptions, type PlayerEvents, type PlayerStats } from './mse-player.js'
export { Publisher, type PublisherEvents, type PublisherOptions, type RunningStream, type StreamSink, type StreamSource } from './publisher.js'
export { recorderSource, type RecorderSourceOptions } from './recorder-source.js'
export { ApiError, SessionsApi, type SessionListQuery, type SessionsApiOptions } from './sessions-api.js'
export { sniffMimeType } from './sniff.js'
export {
  streamUrl, wsOrigin, type CreatedSession, type MintedToken, type OperatorView, type SessionEventView, type SessionPage, type SessionView, type StreamUrlParts,
} from '@streaming-service/protocol'
export { Viewer, type ViewerEvents, type ViewerOptions } from './viewer.js'
