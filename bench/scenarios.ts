/** The scenarios of `pnpm bench` and where their clients connect. */

export const RELAYS = 3

export interface Scenario {
  key: string
  title: string
  placement: string
  sessions: number
  /** Bytes per message, the load generator's 17-byte header included. */
  messageSize: number
  fps: number
  publisherRelay (session: number): number
  operatorRelays (session: number): number[]
}

export function allScenarios (seconds: number): Scenario[] {
  return [
    {
      key: 'a',
      title: `(a) fan-out: 1 publisher → 200 operators, 16 KB @ 30 fps, ${seconds} s`,
      placement: 'publisher on relay 1; operators round-robin over relays 1–3 (67 local, 133 via Redis)',
      sessions: 1,
      messageSize: 16 * 1024,
      fps: 30,
      publisherRelay: () => 0,
      operatorRelays: () => Array.from({ length: 200 }, (_, j) => j % RELAYS),
    },
    {
      key: 'b',
      title: `(b) many sessions: 100 × (1 publisher → 2 operators), 8 KB @ 25 fps, ${seconds} s`,
      placement: 'session i: publisher on relay i mod 3, its operators on the two other relays (every frame via Redis)',
      sessions: 100,
      messageSize: 8 * 1024,
      fps: 25,
      publisherRelay: (i) => i % RELAYS,
      operatorRelays: (i) => [(i + 1) % RELAYS, (i + 2) % RELAYS],
    },
    {
      key: 'c',
      title: `(c) small frames: 1 publisher → 5 operators, 1 KB @ 100 fps, ${seconds} s`,
      placement: 'publisher on relay 1; operators round-robin over relays 1–3',
      sessions: 1,
      messageSize: 1024,
      fps: 100,
      publisherRelay: () => 0,
      operatorRelays: () => Array.from({ length: 5 }, (_, j) => j % RELAYS),
    },
  ]
}
