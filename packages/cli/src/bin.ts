#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8'

// V8 grows the young generation up to 32 MB (two 16 MB semi-spaces) once
// enough allocations survive a scavenge, which a relay's handshakes and its
// steady flow of short-lived payload buffers soon make happen, and does not
// give it back while the process is busy. Held at the few MB it starts with,
// a relay is cheaper in memory and no dearer in CPU (`pnpm bench`, see
// bench/README.md: RSS per idle operator connection 33 → 16 KB; scenario (b)
// 9–17 % less CPU per delivered GB; the cost, also there: more major GCs
// while multi-MB messages are assembled). V8 reads the growth factor
// whenever it would grow the space, so set here, before any module is
// loaded, it holds (given on the command line, V8 raises it to at least 2
// when it sets up the heap; packages/cli/test/young-generation.test.ts fails
// if a Node upgrade changes this). Semi-space sizes given on the command line
// or in NODE_OPTIONS are left to rule.
const nodeOptions = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`
if (!/semi[-_]space/.test(nodeOptions)) setFlagsFromString('--semi-space-growth-factor=1')

await import('./program.js')
