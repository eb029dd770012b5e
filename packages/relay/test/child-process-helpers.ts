/** What the helper processes forked by hostile-media.test.ts (hostile-publisher.ts, latency-probe.ts) share. */

/** Ends the process on an error the parent will see as an early exit. */
export function fail (err: unknown): never {
  console.error(err)
  process.exit(1)
}
