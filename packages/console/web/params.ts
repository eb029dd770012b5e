export type PublishSource = 'camera' | 'screen' | 'pattern'

/** What the console's URL can set, so a link (or a test) can prepare it. */
export interface ConsoleParams {
  /** REST API base (`?api=`); default: the page's origin. */
  api: string
  /** A relay suggested by the link (`?ws=`, e.g. `ws://relay-2:8090`): used only once the user confirms it. */
  ws: string | undefined
  session: string | undefined
  client: string | undefined
  /** `?stream_key=`: the name the server's logs redact. */
  streamKey: string | undefined
  /** Preselects what to publish (`?publish=camera|screen|pattern`); publishing itself always waits for a click on Start. */
  publish: PublishSource | undefined
  /** Start watching at once (`?watch=1`; needs session). */
  watch: boolean
  /** The operator's user id (`?user=`). */
  user: string | undefined
  /**
   * The operator's token for `session` and `user` (`#token=`: in the
   * fragment, which browsers send to no server; `?token=` is read too).
   */
  token: string | undefined
}

export function readParams (location: Location): ConsoleParams {
  const query = new URLSearchParams(location.search)
  const fragment = new URLSearchParams(location.hash.slice(1))
  const value = (name: string, from: URLSearchParams = query) => {
    const text = from.get(name)?.trim()
    return text === undefined || text === '' ? undefined : text
  }
  const publish = value('publish')
  return {
    api: (value('api') ?? location.origin).replace(/\/+$/, ''),
    ws: value('ws'),
    session: value('session'),
    client: value('client'),
    streamKey: value('stream_key'),
    publish: publish === 'camera' || publish === 'screen' || publish === 'pattern' ? publish : undefined,
    watch: ['1', 'true', 'yes'].includes(value('watch') ?? ''),
    user: value('user'),
    token: value('token', fragment) ?? value('token'),
  }
}

/** A link to this page with the given parameters (unset ones left out), and a fragment's. */
export function consoleLink (location: Location, params: Record<string, string | undefined>, fragment: Record<string, string> = {}): string {
  const url = new URL(location.pathname, location.origin)
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') url.searchParams.set(name, value)
  if (Object.keys(fragment).length > 0) url.hash = new URLSearchParams(fragment).toString()
  return url.toString()
}
