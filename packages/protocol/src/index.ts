export { CloseCode, CloseReason, closeReason, isKnownCloseCode, MAX_CLOSE_REASON_BYTES, type CloseCodeName, type CloseCodeValue } from './close-codes.js'
export {
  SESSION_EVENT_TYPES, WEBHOOK_HEADERS, type DeliveryState, type SessionEventList, type SessionEventPayload, type SessionEventType, type SessionEventView,
} from './events.js'
export { USER_ID_PATTERN, UUID_PATTERN } from './ids.js'
export { STREAM_ROUTE, streamPath, streamUrl, wsOrigin, type StreamUrlParts } from './paths.js'
export type {
  CreatedSession, CreateSessionRequest, ErrorBody, MintedToken, MintTokenRequest, OperatorList, OperatorView, SessionListItem, SessionPage, SessionStatus, SessionView,
} from './rest.js'
