/**
 * JSON schemas of the REST API: they validate request bodies, shape
 * responses, and are what /openapi.json describes (SPEC §9). Ids in paths
 * are checked by the handlers (parseUuid, parseUserId) so that their errors
 * keep their own codes (invalid_id, invalid_user_id).
 */
import { SESSION_EVENT_TYPES } from '@streaming-service/protocol'

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
const USER_ID = '^[A-Za-z0-9._:-]{1,128}$'
const timestamp = { type: 'string', format: 'date-time' } as const
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  description: 'Every error: a snake_case code and a human message',
  properties: {
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] },
  },
  required: ['error'],
} as const

const error = { $ref: 'Error#' } as const

/** Error responses of the routes that take a session id. */
export const sessionErrors = { 400: error, 401: error, 404: error, 503: error } as const

export const sessionIdParams = {
  type: 'object',
  properties: { id: { type: 'string', description: 'Session id (UUID)', examples: ['5f0c7a2e-3b1d-4c8e-9a6f-2d4b7e1c9a03'] } },
  required: ['id'],
} as const

export const operatorParams = {
  type: 'object',
  properties: {
    id: sessionIdParams.properties.id,
    user_id: { type: 'string', description: 'Operator user id: 1-128 of A-Za-z0-9._:-' },
  },
  required: ['id', 'user_id'],
} as const

export const createSessionWebhookUrl = {
  type: 'string', maxLength: 2048, description: 'This session\'s own webhook receiver (http or https), besides WEBHOOK_URL', examples: ['https://platform.example.com/hooks/streams'],
} as const

export const createSessionBody = {
  type: 'object',
  required: ['client_id'],
  additionalProperties: false,
  properties: {
    client_id: { type: 'string', pattern: UUID, description: 'The publishing client\'s id: the path user id that publishes' },
    webhook_url: createSessionWebhookUrl,
  },
} as const

export const createdSession = {
  type: 'object',
  description: 'The only answer that carries the stream key',
  properties: {
    session_id: { type: 'string' },
    client_id: { type: 'string' },
    stream_key: { type: 'string', description: 'The publisher\'s credential: ?stream_key= or Authorization: Bearer' },
    ws_url: { type: 'string', description: 'Where the publisher connects' },
    status: { type: 'string', enum: ['waiting'] },
    created_at: timestamp,
  },
  required: ['session_id', 'client_id', 'stream_key', 'ws_url', 'status', 'created_at'],
} as const

export const sessionView = {
  type: 'object',
  properties: {
    session_id: { type: 'string' },
    client_id: { type: 'string' },
    status: { type: 'string', enum: ['waiting', 'active', 'finished'] },
    ws_url: { type: 'string' },
    created_at: timestamp,
    started_at: nullableTimestamp,
    finished_at: nullableTimestamp,
    operators_count: { type: 'integer' },
    publisher_online: { type: 'boolean' },
  },
  required: ['session_id', 'client_id', 'status', 'ws_url', 'created_at', 'started_at', 'finished_at', 'operators_count', 'publisher_online'],
} as const

export const operatorList = {
  type: 'object',
  properties: {
    operators: {
      type: 'array',
      items: {
        type: 'object',
        properties: { user_id: { type: 'string' }, joined_at: timestamp, online: { type: 'boolean' } },
        required: ['user_id', 'joined_at', 'online'],
      },
    },
  },
  required: ['operators'],
} as const

export const mintTokenBody = {
  type: 'object',
  required: ['user_id'],
  additionalProperties: false,
  properties: {
    user_id: { type: 'string', pattern: USER_ID, description: 'The operator: its stream path user id and the token\'s sub' },
    ttl: { type: 'string', description: 'Validity: 30s, 10m, 2h… (default 1h, at most 24h)', examples: ['10m'] },
  },
} as const

export const mintedToken = {
  type: 'object',
  properties: {
    token: { type: 'string', description: 'JWT: sid, sub, role "operator", iat, exp' },
    ws_url: { type: 'string', description: 'Ready to open: the operator\'s stream URL with ?token=' },
    expires_at: timestamp,
  },
  required: ['token', 'ws_url', 'expires_at'],
} as const

export const sessionListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['waiting', 'active', 'finished'] },
    client_id: { type: 'string', pattern: UUID },
    // A string: query values are not coerced (coerceTypes is off), so the range is in the pattern.
    limit: { type: 'string', pattern: '^(?:[1-9]|[1-9][0-9]|1[0-9][0-9]|200)$', description: 'Sessions per page, 1-200 (default 50)' },
    cursor: { type: 'string', maxLength: 200, description: 'next_cursor of the previous page' },
  },
} as const

export const sessionPage = {
  type: 'object',
  description: 'Newest first; next_cursor is null on the last page',
  properties: {
    sessions: { type: 'array', items: sessionView },
    next_cursor: { type: ['string', 'null'] },
  },
  required: ['sessions', 'next_cursor'],
} as const

export const sessionEventList = {
  type: 'object',
  properties: {
    events: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'Also the webhook-id header of its deliveries' },
          type: { type: 'string', enum: [...SESSION_EVENT_TYPES] },
          session_id: { type: 'string' },
          occurred_at: timestamp,
          data: { type: 'object', additionalProperties: true },
          delivery: {
            type: 'object',
            properties: {
              state: { type: 'string', enum: ['pending', 'delivered', 'failed', 'skipped'] },
              attempts: { type: 'integer' },
              delivered_at: nullableTimestamp,
              last_error: { type: ['string', 'null'] },
            },
            required: ['state', 'attempts', 'delivered_at', 'last_error'],
          },
        },
        required: ['id', 'type', 'session_id', 'occurred_at', 'data', 'delivery'],
      },
    },
  },
  required: ['events'],
} as const
