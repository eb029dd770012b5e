#!/usr/bin/env node
// Writes dist/embedded/pglite-template.tar.gz: an initialized, empty PGlite
// data dir. A fresh DATA_DIR is loaded from it in ~3 s instead of running
// initdb in WASM (~8 s on a 2-core machine). Rebuilt when PGlite changes.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const outDir = join(dirname(fileURLToPath(import.meta.url)), '../dist/embedded')
const template = join(outDir, 'pglite-template.tar.gz')
const stamp = join(outDir, 'pglite-template.version')

const require = createRequire(import.meta.url)
const pgliteDir = dirname(require.resolve('@electric-sql/pglite')).replace(/\/dist.*$/, '')
const version = JSON.parse(readFileSync(join(pgliteDir, 'package.json'), 'utf8')).version

if (existsSync(template) && existsSync(stamp) && readFileSync(stamp, 'utf8') === version) process.exit(0)

const { PGlite } = await import('@electric-sql/pglite')
const db = await PGlite.create('memory://')
const blob = await db.dumpDataDir('gzip')
await db.close()
mkdirSync(outDir, { recursive: true })
writeFileSync(template, Buffer.from(await blob.arrayBuffer()))
writeFileSync(stamp, version)
console.log(`embedded database template for PGlite ${version}: ${template} (${blob.size} bytes)`)
