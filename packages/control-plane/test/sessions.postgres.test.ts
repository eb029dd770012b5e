import t from 'tap'
import { testApps } from './helper.js'
import { sessionsSuite } from './sessions-suite.js'

// SPEC §3 on a fresh PostgreSQL database (one per file).
sessionsSuite(t, testApps(t, 'postgres'))
