import { join } from 'node:path'
import t from 'tap'
import { DEPLOY, program, readYaml, runProgram } from './helper.js'

const promtool = program('promtool', 'prometheus')
const dir = join(DEPLOY, 'prometheus')

t.test('promtool check config: deploy/prometheus/prometheus.yml and the rule files it loads', async (t) => {
  const run = runProgram(promtool, ['check', 'config', 'prometheus.yml'], { cwd: dir })
  if (run.status !== 0) t.comment(run.output)
  t.equal(run.status, 0, 'promtool exits 0')
  t.match(run.output, /SUCCESS: prometheus\.yml is valid/)
  t.match(run.output, /SUCCESS: \d+ rules found/)
})

t.test('promtool check rules: deploy/prometheus/alerts.yml', async (t) => {
  const run = runProgram(promtool, ['check', 'rules', 'alerts.yml'], { cwd: dir })
  if (run.status !== 0) t.comment(run.output)
  t.equal(run.status, 0, 'promtool exits 0')
  t.match(run.output, /SUCCESS: 12 rules found/)
})

t.test('promtool test rules: every alert fires on the series it is meant for, and stays silent on the others', async (t) => {
  const run = runProgram(promtool, ['test', 'rules', 'alerts.test.yml'], { cwd: dir })
  if (run.status !== 0) t.comment(run.output)
  t.equal(run.status, 0, 'promtool exits 0')
  t.match(run.output, /SUCCESS/)

  const alerts = readYaml<{ groups: Array<{ rules: Array<{ alert: string }> }> }>('deploy/prometheus/alerts.yml')
    .groups.flatMap((group) => group.rules.map((rule) => rule.alert))
  const tests = readYaml<{ tests: Array<{ alert_rule_test: Array<{ alertname: string, exp_alerts: unknown[] }> }> }>('deploy/prometheus/alerts.test.yml')
  const fired = new Set(tests.tests.flatMap((test) => test.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)))
  for (const alert of alerts) t.ok(fired.has(alert), `alerts.test.yml shows ${alert} firing`)
})
