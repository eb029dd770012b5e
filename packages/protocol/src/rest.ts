/** The REST API's bodies (SPEC §3), as clients see them. Timestamps are ISO 8601 strings. */

export type SessionStatus = 'waiting' | 'active' | 'finished'

/** Every error: `{"error": {"code": "snake_case", "message": "human text"}}`. */
export interface ErrorBody {
  error: { code: string, message: string }
}

/** `POST /sessions` */
export interface CreateSessionRequest {
  client_id: string
  /** This session's own webhook receiver (http or https), besides WEBHOOK_URL (SPEC §12). */
  webhook_url?: string
}

/** `POST /sessions` → 201: the only answer that carries the stream key. */
export interface CreatedSession {
  session_id: string
  client_id: string
  stream_key: string
  ws_url: string
  status: 'waiting'
  created_at: string
}

/** `GET /sessions/:id` → 200 (never the stream key). */
export interface SessionView {
  session_id: string
  client_id: string
  status: SessionStatus
  ws_url: string
  created_at: string
  started_at: string | null
  finished_at: string | null
  operators_count: number
  publisher_online: boolean
}

export interface OperatorView {
  user_id: string
  joined_at: string
  online: boolean
}

/** `GET /sessions/:id/operators` → 200, in join order. */
export interface OperatorList {
  operators: OperatorView[]
}

/** `POST /sessions/:id/tokens` (SPEC §9). */
export interface MintTokenRequest {
  user_id: string
  /** `30s`, `10m`, `2h`…; default 1 h, at most 24 h. */
  ttl?: string
}

/** `POST /sessions/:id/tokens` → 201: an operator token and the stream URL that carries it. */
export interface MintedToken {
  token: string
  ws_url: string
  expires_at: string
}

/** `GET /sessions` item: a session as `GET /sessions/:id` shows it. */
export type SessionListItem = SessionView

/** `GET /sessions?status=&client_id=&limit=&cursor=` → 200: newest first; `next_cursor` null on the last page. */
export interface SessionPage {
  sessions: SessionListItem[]
  next_cursor: string | null
}
