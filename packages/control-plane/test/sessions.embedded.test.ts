import t from 'tap'
import { testApps } from './helper.js'
import { sessionsSuite } from './sessions-suite.js'

// SPEC §3 on the embedded database (PGlite in a temporary DATA_DIR).
sessionsSuite(t, testApps(t, 'embedded'))
