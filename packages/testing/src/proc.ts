import { readFileSync } from 'node:fs'

/** Linux USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every mainstream platform). */
const CLOCK_TICKS_PER_SECOND = 100

/** Resident set size of a process in bytes (VmRSS from /proc/<pid>/status). */
export function rssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status (process exited?)`)
  return Number(match[1]) * 1024
}

/** CPU time a process has used so far, user + system, in seconds (utime + stime from /proc/<pid>/stat). */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc/${pid}/stat: ${stat}`)
  return (utime + stime) / CLOCK_TICKS_PER_SECOND
}

export interface RssSampler {
  /** RSS when sampling started, in bytes. */
  baseline: number
  /** Highest RSS seen so far, in bytes. */
  readonly peak: number
  readonly samples: number[]
  /** Stops sampling (also done at teardown); returns the peak growth over the baseline in bytes. */
  stop (): number
}

/** Samples a process's RSS every `everyMs` from now on, keeping the peak. */
export function sampleRss (t: { teardown (fn: () => unknown): void }, pid: number, everyMs = 500): RssSampler {
  const baseline = rssBytes(pid)
  const samples = [baseline]
  let peak = baseline
  const take = () => {
    try {
      const rss = rssBytes(pid)
      samples.push(rss)
      if (rss > peak) peak = rss
    } catch {}
  }
  const timer = setInterval(take, everyMs)
  t.teardown(() => clearInterval(timer))
  return {
    baseline,
    get peak () { return peak },
    samples,
    stop () {
      clearInterval(timer)
      take()
      return peak - baseline
    },
  }
}
