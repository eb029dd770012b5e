/** What the platform hears about a session (SPEC §12), in the order they can happen. */
export const SESSION_EVENT_TYPES = [
  'session.created',
  'session.active',
  'session.waiting',
  'session.finished',
  'operator.joined',
  'operator.left',
  'operator.revoked',
] as const

export type SessionEventType = typeof SESSION_EVENT_TYPES[number]
