#!/usr/bin/env node
// Bundles the web console (web/) into dist/public/: index.html, console.css and
// console.js (with the client SDK inside). Run by the root `pnpm build` after tsc
// (the SDK is bundled from its built dist/). Nothing is fetched from a CDN.
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist/public')
mkdirSync(out, { recursive: true })
await build({
  entryPoints: [join(root, 'web/main.ts')],
  outfile: join(out, 'console.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
})
for (const file of ['index.html', 'console.css']) copyFileSync(join(root, 'web', file), join(out, file))
