import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync, FastifySchema } from 'fastify'

export interface ConsolePluginOptions {
  /** The built page (index.html and its assets); default: this package's `dist/public`. */
  root?: string
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

// The page talks to the API and to relays, which may be other origins (`?api=`, `?ws=`), and plays blob: MediaSources.
const contentSecurityPolicy = [
  "default-src 'self'",
  'connect-src \'self\' http: https: ws: wss:',
  "media-src 'self' blob:",
  "img-src 'self' data: blob:",
  "frame-ancestors 'none'",
].join('; ')

interface Asset { body: Buffer, type: string }

// How /openapi.json describes these routes (read by @fastify/swagger when the app has it).
const pageDoc: Record<string, unknown> = { summary: 'The web console (open in every mode)', tags: ['console'], security: [] }
const assetDoc: Record<string, unknown> = { summary: 'The console\'s scripts and styles', tags: ['console'], security: [] }

function loadAssets (root: string): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  if (!existsSync(root)) return assets
  for (const name of readdirSync(root)) {
    const type = contentTypes[extname(name)]
    if (type !== undefined) assets.set(name, { body: readFileSync(join(root, name)), type })
  }
  return assets
}

/**
 * The web console: `GET /` and `GET /console/<asset>`, from files read once
 * at registration (a few tens of KB). An unbuilt console answers 503.
 */
export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = async (app, options) => {
  const root = options.root ?? fileURLToPath(new URL('./public/', import.meta.url))
  const assets = loadAssets(root)
  const index = assets.get('index.html')
  if (index === undefined) app.log.warn({ root }, 'web console not built (pnpm build); / answers 503')

  app.get('/', { schema: pageDoc as FastifySchema }, async (_request, reply) => {
    if (index === undefined) {
      return await reply.status(503).send({ error: { code: 'console_not_built', message: 'the web console is not built: run pnpm build' } })
    }
    return await reply
      .type(index.type)
      .header('cache-control', 'no-cache')
      .header('content-security-policy', contentSecurityPolicy)
      // A watch link may carry an operator token in the page URL: never send it on as a Referer.
      .header('referrer-policy', 'no-referrer')
      .header('x-content-type-options', 'nosniff')
      .send(index.body)
  })

  app.get<{ Params: { asset: string } }>('/console/:asset', { schema: assetDoc as FastifySchema }, async (request, reply) => {
    const asset = request.params.asset === 'index.html' ? undefined : assets.get(request.params.asset)
    if (asset === undefined) {
      reply.callNotFound()
      return reply
    }
    return await reply
      .type(asset.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(asset.body)
  })
}
