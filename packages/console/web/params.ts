import { wsOrigin } from '@streaming-service/client'

export type PublishSource = 'camera' | 'screen' | 'pattern'

/** Everything the console does can be set from its URL, so a link (or a test) can drive it. */
export interface ConsoleParams {
  /** REST API base (`?api=`); default: the page's origin. */
  api: string
  /** WebSocket base (`?ws=`, e.g. `ws://relay-2:8090`); default: the page's origin. */
  ws: string
  session: string | undefined
  client: string | undefined
  /** `?stream_key=`: the name the server's logs redact. */
  streamKey: string | undefined
  /** Start publishing at once (`?publish=camera|screen|pattern`; needs session, client, stream_key). */
  publish: PublishSource | undefined
  /** Start watching at once (`?watch=1`; needs session). */
  watch: boolean
  /** The operator's user id (`?user=`). */
  user: string | undefined
}

export function readParams (location: Location): ConsoleParams {
  const query = new URLSearchParams(location.search)
  const value = (name: string) => {
    const text = query.get(name)?.trim()
    return text === undefined || text === '' ? undefined : text
  }
  const publish = value('publish')
  return {
    api: (value('api') ?? location.origin).replace(/\/+$/, ''),
    ws: value('ws') ?? wsOrigin(location),
    session: value('session'),
    client: value('client'),
    streamKey: value('stream_key'),
    publish: publish === 'camera' || publish === 'screen' || publish === 'pattern' ? publish : undefined,
    watch: ['1', 'true', 'yes'].includes(value('watch') ?? ''),
    user: value('user'),
  }
}

/** A link to this page with the given parameters (unset ones left out). */
export function consoleLink (location: Location, params: Record<string, string | undefined>): string {
  const url = new URL(location.pathname, location.origin)
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') url.searchParams.set(name, value)
  return url.toString()
}
